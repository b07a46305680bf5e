import { readDeviceSettings } from '../../helper/config.js';
import { GatewayError, HelperError } from '../../helper/errors.js';
import { renewalSummary, renewIfDue } from '../../helper/renew.js';
import { deviceSettings } from '../../helper/settings.js';
import { TollgateError, type ErrorKind } from '../../shared/errors.js';
import { kindOfStatus } from '../../shared/http/status.js';
import { flag, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { usageError } from '../failure.js';
import { fields } from '../format.js';

/** The helper's errors, as the CLI reports every error (code, message, exit code by kind). */
function asTollgateError(e: HelperError): TollgateError {
  const kind: ErrorKind = e instanceof GatewayError ? (e.status !== undefined ? kindOfStatus(e.status) : 'unavailable') : 'invalid_input';
  return new TollgateError(kind, e.code, e.message);
}

/** Runs on the device: renews its certificate through the gateway when due (see helper/renew.ts). */
export const renewCommand: Command = {
  name: ['device', 'renew'],
  args: [],
  usage: '[--device-config <device.json>] [--force]',
  summary: 'on a device: renew its certificate through the gateway once two thirds of its lifetime have passed',
  details: [
    'Generates a new key and CSR with the same subject, sends it to the gateway over mutual TLS with the',
    'current certificate, and replaces the certificate and key files named in device.json (the old pair',
    'stays as .bak until the new certificate has been used once). The credential helper does the same',
    'before fetching a token. The device.json is --device-config; without it, $TOLLGATE_DEVICE_CONFIG,',
    '$TOLLGATE_SOTA_PATHS, /etc/tollgate/device.json, then the sota.toml layout of a Foundries device',
    '(/usr/lib/sota/conf.d, /var/sota/sota.toml, /etc/sota/conf.d) are used, as by the credential helper.',
  ].join('\n'),
  options: {
    'device-config': { type: 'string', value: 'file', help: "the device's device.json (default: as the credential helper finds it)" },
    force: { type: 'boolean', help: 'renew now, whatever the certificate\'s age' },
  },
  mode: 'standalone',
  async run(ctx, input) {
    if (input.options.config !== undefined) {
      // The old spelling: --config is the global option naming a Tollgate configuration.
      throw usageError('usage_option_renamed', 'tollgate device renew takes the device.json as --device-config <file>; --config names a Tollgate configuration, which renewal does not use');
    }
    const configPath = stringOption(input, 'device-config');
    let result;
    try {
      const settings = configPath !== undefined ? await readDeviceSettings(configPath) : await deviceSettings(ctx.env);
      result = await renewIfDue(settings, { force: flag(input, 'force') });
    } catch (e) {
      if (e instanceof HelperError) throw asTollgateError(e);
      throw e;
    }
    const out = renewalSummary(result);
    ctx.print(out, () =>
      fields([
        ['renewed', out.renewed ? 'yes' : 'no (not yet due)'],
        ['fingerprint', out.fingerprint256],
        ['not after', out.notAfter],
        ['renewal due', out.renewalDueAt],
      ]),
    );
  },
};
