#!/usr/bin/env node
/**
 * `tollgate` as the device package ships it: only `tollgate device renew`, the device's own
 * certificate renewal, without the operator's command line and its server dependencies. Options
 * and output are those of the full CLI's `tollgate device renew`.
 */
import { parseArgs } from 'node:util';
import { readDeviceSettings } from './config.js';
import { HelperError, oneLine } from './errors.js';
import { renewalSummary, renewIfDue } from './renew.js';
import { deviceSettings } from './settings.js';
import { packageVersion } from './version.js';

const USAGE = `Usage: tollgate device renew [--config <device.json>] [--force] [--json]

Renews the device certificate through the gateway once two thirds of its lifetime have passed
(--force: now). Without --config: $TOLLGATE_DEVICE_CONFIG, $TOLLGATE_SOTA_PATHS,
/etc/tollgate/device.json, then the sota.toml layout (/usr/lib/sota/conf.d, /var/sota/sota.toml,
/etc/sota/conf.d).
`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === 'version') {
    process.stdout.write(`tollgate ${packageVersion()}\n`);
    return 0;
  }
  if (argv[0] !== 'device' || argv[1] !== 'renew') {
    process.stderr.write(USAGE);
    return 2;
  }
  let values: { config?: string; force?: boolean; json?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv.slice(2),
      options: { config: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`tollgate: ${oneLine((e as Error).message)}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    const settings = values.config !== undefined ? await readDeviceSettings(values.config) : await deviceSettings(process.env);
    const out = renewalSummary(await renewIfDue(settings, { force: values.force === true }));
    process.stdout.write(
      values.json
        ? `${JSON.stringify(out)}\n`
        : `renewed      ${out.renewed ? 'yes' : 'no (not yet due)'}\nfingerprint  ${out.fingerprint256}\nnot after    ${out.notAfter}\nrenewal due  ${out.renewalDueAt}\n`,
    );
    return 0;
  } catch (e) {
    if (!(e instanceof HelperError)) throw e;
    process.stderr.write(`tollgate: ${oneLine(e.message)} (${e.code})\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
