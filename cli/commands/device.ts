import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { EnrollmentAnswer } from '../../admin/client.js';
import { assertDeviceUuid } from '../../shared/authority/index.js';
import { createCsr, DEFAULT_KEY_ALGORITHM, generateKeyPair, isKeyAlgorithm, KEY_ALGORITHM_NAMES, KEY_ALGORITHMS, OID } from '../../shared/pki/index.js';
import type { DeviceState } from '../../shared/store/types.js';
import { intOption, listOption, requiredString, stringOption } from '../args.js';
import type { Command, Input, OptionSpec } from '../command.js';
import type { Context } from '../context.js';
import { DEVICE_FILES, checkRegistries, prepareBundleDir, writeDeviceBundle } from '../device-files.js';
import { usageError } from '../failure.js';
import { readInputFile } from '../files.js';
import { fields, nextPageHint, table } from '../format.js';
import { renewCommand } from './device-renew.js';

const registryOption: OptionSpec = {
  type: 'string',
  multiple: true,
  value: 'host:port',
  help: 'registry the device pulls from, listed in device.json',
};

function summarize(enrolled: EnrollmentAnswer, written: Record<string, string> | null): string {
  const d = enrolled.device;
  return fields([
    ['uuid', d.uuid],
    ['factory', d.factory],
    ['state', d.state],
    ['test', d.test ? 'yes' : 'no'],
    ['expires', d.certificate.notAfter],
    ['gateway', enrolled.gateway],
    ...(written ? [['files', Object.values(written).join(' ')] as [string, string]] : []),
  ]);
}

/** A device.json without registries makes the helper answer "credentials not found" for every one. */
function warnIfNoRegistry(ctx: Context, out: string | undefined, registries: readonly string[]): void {
  if (out === undefined || registries.length > 0) return;
  ctx.warn(
    'device_config_no_registry',
    `${join(out, DEVICE_FILES.config)} names no registry: the credential helper answers "credentials not found" for every registry until "registries" lists one (give --registry <host:port>)`,
  );
}

function output(ctx: Context, enrolled: EnrollmentAnswer, written: Record<string, string> | null, extra: string[] = []): void {
  ctx.print({ device: enrolled.device, gateway: enrolled.gateway, files: written }, () => [summarize(enrolled, written), ...extra].join('\n'));
}

const enroll: Command = {
  name: ['device', 'enroll'],
  args: ['factory'],
  usage: '<factory> (--csr <file> | --cert <file>) [--name <name>] [--days <n>] [--out <dir>] [--registry <host:port> ...]',
  summary: 'enroll a device from its CSR (signed by the factory\'s online CA) or from a certificate a factory CA issued',
  details: [
    'The CSR subject must be CN=<device uuid>, OU=<factory>; the device keeps its private key.',
    'With --out, writes device.pem, ca.pem, gateway-ca.pem and device.json (which expects the key as device.key next to them).',
  ].join('\n'),
  options: {
    csr: { type: 'string', value: 'file', help: 'PEM PKCS#10 certificate signing request' },
    cert: { type: 'string', value: 'file', help: 'PEM device certificate issued by a CA of the factory' },
    name: { type: 'string', value: 'name', help: 'a label for the device' },
    days: { type: 'string', value: 'n', help: 'certificate lifetime in days (CSR only; default and cap from pki.deviceCertDays)' },
    ca: { type: 'string', value: 'id', help: 'online CA to sign with (default: the newest active one)' },
    out: { type: 'string', value: 'dir', help: 'write the device files into this directory' },
    registry: registryOption,
  },
  mode: 'any',
  async run(ctx, input) {
    const csrFile = stringOption(input, 'csr');
    const certFile = stringOption(input, 'cert');
    if ((csrFile === undefined) === (certFile === undefined)) throw usageError('usage_enrollment_source', 'give exactly one of --csr <file> or --cert <file>');
    if (certFile !== undefined && (input.options.days !== undefined || input.options.ca !== undefined)) {
      throw usageError('usage_option_conflict', '--days and --ca apply to --csr: a certificate already has its issuer and lifetime');
    }
    const days = intOption(input, 'days', 1, 3650);
    const registries = checkRegistries(listOption(input, 'registry'));
    const out = stringOption(input, 'out');
    const body =
      csrFile !== undefined
        ? { csr: readInputFile(csrFile, 'CSR'), name: stringOption(input, 'name'), days, caId: stringOption(input, 'ca') }
        : { certificate: readInputFile(certFile!, 'certificate'), name: stringOption(input, 'name') };
    if (out !== undefined) prepareBundleDir(out, false);
    const enrolled = await ctx.client().enroll(input.args.factory, body);
    const written = out !== undefined ? writeDeviceBundle(out, enrolled, registries) : null;
    warnIfNoRegistry(ctx, out, registries);
    const hint = out !== undefined && !existsSync(join(out, DEVICE_FILES.key)) ? [`put the device's private key at ${join(out, DEVICE_FILES.key)} (device.json names it)`] : [];
    output(ctx, enrolled, written, hint);
  },
};

const issueTest: Command = {
  name: ['device', 'issue-test'],
  args: ['factory'],
  usage: '<factory> --out <dir> [--hours <n> | --minutes <n>] [--name <name>] [--uuid <uuid>] [--key <alg>] [--registry <host:port> ...]',
  summary: 'make a short-lived test device for CI: key, CSR, enrollment and device files in one step',
  details: [
    'Generates the key here, enrolls it as a test device (needs only the devices:test scope remotely) and writes',
    'device.key (0600), device.pem, ca.pem, gateway-ca.pem and device.json into --out.',
  ].join('\n'),
  options: {
    out: { type: 'string', value: 'dir', help: 'directory for the device files (created; must not hold them already)' },
    hours: { type: 'string', value: 'n', help: 'certificate lifetime in hours (default 1; capped by pki.testCertMaxHours)' },
    minutes: { type: 'string', value: 'n', help: 'certificate lifetime in minutes, instead of --hours' },
    name: { type: 'string', value: 'name', help: 'a label for the device' },
    uuid: { type: 'string', value: 'uuid', help: 'device UUID (default: a random one)' },
    key: { type: 'string', value: 'alg', choices: KEY_ALGORITHMS, help: `key algorithm: ${KEY_ALGORITHM_NAMES} (default ${DEFAULT_KEY_ALGORITHM})` },
    registry: registryOption,
  },
  mode: 'any',
  async run(ctx, input) {
    const out = requiredString(input, 'out');
    const factory = input.args.factory;
    const hours = intOption(input, 'hours', 1, 720);
    const minutes = intOption(input, 'minutes', 1, 43_200);
    if (hours !== undefined && minutes !== undefined) throw usageError('usage_option_conflict', 'give --hours or --minutes, not both');
    const uuid = assertDeviceUuid(stringOption(input, 'uuid') ?? randomUUID(), '--uuid');
    const algorithm = stringOption(input, 'key') ?? DEFAULT_KEY_ALGORITHM;
    if (!isKeyAlgorithm(algorithm)) {
      throw usageError('key_algorithm_invalid', `--key must be one of ${KEY_ALGORITHM_NAMES}, not "${algorithm.slice(0, 40)}"`);
    }
    const registries = checkRegistries(listOption(input, 'registry'));
    prepareBundleDir(out, true);

    const pair = generateKeyPair(algorithm);
    const csr = await createCsr({
      subject: { commonName: uuid, organizationalUnit: factory },
      privateKeyPem: pair.privateKeyPem,
      publicKeyPem: pair.publicKeyPem,
      keyUsage: ['digitalSignature'],
      extendedKeyUsage: [OID.clientAuth],
    });
    const enrolled = await ctx.client().enroll(factory, {
      csr,
      test: true,
      name: stringOption(input, 'name'),
      ...(hours !== undefined ? { hours } : {}),
      ...(minutes !== undefined ? { minutes } : {}),
    });
    const written = writeDeviceBundle(out, enrolled, registries, pair.privateKeyPem);
    warnIfNoRegistry(ctx, out, registries);
    output(ctx, enrolled, written);
  },
};

const STATES: readonly DeviceState[] = ['active', 'pending', 'disabled', 'revoked'];

const list: Command = {
  name: ['device', 'list'],
  args: ['factory'],
  usage: '<factory> [--state <state>] [--test | --no-test] [--search <text>] [--limit <n>] [--after <cursor>]',
  summary: 'list the devices of a factory, by UUID',
  details: 'When more devices follow, the command that shows the next page is printed on stderr.',
  options: {
    state: { type: 'string', value: 'state', choices: STATES, help: `only devices in this state: ${STATES.join(', ')}` },
    test: { type: 'boolean', help: 'only test devices' },
    'no-test': { type: 'boolean', help: 'only enrolled (non-test) devices' },
    search: { type: 'string', value: 'text', help: 'only devices whose UUID starts with, or whose name contains, this text' },
    limit: { type: 'string', value: 'n', help: 'at most this many (1-1000, default 100)' },
    after: { type: 'string', value: 'cursor', help: 'continue from the cursor the previous page printed' },
  },
  mode: 'any',
  async run(ctx, input) {
    const state = stringOption(input, 'state');
    if (state !== undefined && !(STATES as readonly string[]).includes(state)) {
      throw usageError('state_invalid', `--state must be one of ${STATES.join(', ')}`);
    }
    if (input.options.test === true && input.options['no-test'] === true) throw usageError('usage_option_conflict', 'give --test or --no-test, not both');
    const page = await ctx.client().listDevices(input.args.factory, {
      state,
      test: input.options.test === true ? 'true' : input.options['no-test'] === true ? 'false' : undefined,
      search: stringOption(input, 'search'),
      limit: intOption(input, 'limit', 1, 1000),
      cursor: stringOption(input, 'after'),
    });
    const devices = page.items;
    nextPageHint(ctx, page.next, ['device', 'list', input.args.factory!]);
    ctx.print(devices, () =>
      table(
        ['UUID', 'STATE', 'TEST', 'NOT AFTER', 'NAME'],
        devices.map((d) => [d.uuid, d.state, d.test ? 'yes' : 'no', d.certificate.notAfter, d.name]),
      ),
    );
  },
};

const show: Command = {
  name: ['device', 'show'],
  args: ['factory', 'uuid'],
  usage: '<factory> <uuid>',
  summary: 'show a device: state, certificate and history',
  mode: 'any',
  async run(ctx, { args }) {
    const d = await ctx.client().getDevice(args.factory, args.uuid);
    ctx.print(d, () =>
      [
        fields([
          ['uuid', d.uuid],
          ['factory', d.factory],
          ['name', d.name],
          ['state', d.state],
          ['state reason', d.stateReason],
          ['test', d.test ? 'yes' : 'no'],
          ['CA', d.caId],
          ['fingerprint', d.certificate.fingerprint256],
          ['not after', d.certificate.notAfter],
          ['created', d.createdAt],
          ['updated', d.updatedAt],
        ]),
        '',
        'history:',
        table(['AT', 'ACTOR', 'ACTION', 'OUTCOME', 'REASON'], d.history.map((h) => [h.at, h.actor, h.action, h.outcome, h.reason])),
      ].join('\n'),
    );
  },
};

function stateCommand(verb: 'disable' | 'enable' | 'revoke', state: DeviceState, summary: string): Command {
  return {
    name: ['device', verb],
    args: ['factory', 'uuid'],
    usage: '<factory> <uuid> [--reason <text>]',
    summary,
    options: { reason: { type: 'string', value: 'text', help: 'why (kept in the audit trail)' } },
    mode: 'any',
    async run(ctx, input: Input) {
      const d = await ctx.client().setDeviceState(input.args.factory, input.args.uuid, state, stringOption(input, 'reason'));
      ctx.print(d, () => `device ${d.uuid} is now ${d.state}`);
    },
  };
}

const remove: Command = {
  name: ['device', 'delete'],
  args: ['factory', 'uuid'],
  usage: '<factory> <uuid>',
  summary: 'delete a device record (its history stays in the audit trail)',
  mode: 'any',
  async run(ctx, { args }) {
    await ctx.client().deleteDevice(args.factory, args.uuid);
    ctx.print({ deleted: args.uuid }, () => `deleted device ${args.uuid}`);
  },
};

export const deviceCommands: Command[] = [
  enroll,
  issueTest,
  list,
  show,
  stateCommand('disable', 'disabled', 'disable a device: it gets no tokens until enabled again'),
  stateCommand('enable', 'active', 'enable a disabled device'),
  stateCommand('revoke', 'revoked', 'revoke a device for good: its tokens die at once'),
  remove,
  renewCommand,
];
