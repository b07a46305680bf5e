import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPERATOR } from '../context.js';
import { writeFileAtomic } from '../../shared/files.js';
import { generateKekText, loadKek, seal } from '../../shared/kek.js';
import { FileKeyStore, keyRefFor } from '../../shared/keystore.js';
import { SealedKeyStore } from '../../shared/sealed-keystore.js';
import { copyStore, referencedKeys } from '../../shared/store/copy.js';
import { describeStore, openStore, parseStoreUrl } from '../../shared/store/index.js';
import { requiredString, stringOption } from '../args.js';
import type { Command } from '../command.js';
import { usageError } from '../failure.js';
import { fields, table } from '../format.js';

/** Where the development gateway CA lives in a PKI directory, and its key store entry in a database. */
const DEV_CA = { cert: join('tls', 'ca.pem'), key: join('tls', 'ca.key'), ref: keyRefFor('dev-gateway-ca') };

export const storeCommands: Command[] = [
  {
    name: ['store', 'copy'],
    args: [],
    usage: '--from <sqlite file or URL> --to <postgres URL> [--from-pki-dir <dir>] [--kek-file <file>]',
    summary: 'copy an installation into a new, empty store (e.g. SQLite to PostgreSQL), keys sealed for it',
    details: [
      'Reads every record from one consistent snapshot of the source (it may keep running), writes them',
      'into the target in one transaction, and compares the row counts of every table. A target that',
      'holds any data is refused. Private keys (online CAs, signing keys, the development gateway CA) are',
      'read from --from-pki-dir (default: pkiDir) or, if the source keeps them sealed, opened with the',
      'configured key-encryption keys; they are sealed for the target with --kek-file (default:',
      'store.keyEncryptionKeyFile).',
    ].join('\n'),
    options: {
      from: { type: 'string', value: 'url', help: 'the source: a SQLite file (or sqlite:PATH) or a postgres:// URL' },
      to: { type: 'string', value: 'url', help: 'the target: a postgres:// URL (or a SQLite file)' },
      'from-pki-dir': { type: 'string', value: 'dir', help: "the source's key directory (default: pkiDir)" },
      'kek-file': { type: 'string', value: 'file', help: 'the key-encryption key to seal keys with (default: store.keyEncryptionKeyFile)' },
    },
    mode: 'local',
    async run(ctx, input) {
      const config = ctx.config();
      const from = parseStoreUrl(requiredString(input, 'from'));
      const to = parseStoreUrl(requiredString(input, 'to'));
      if (from.type === 'sqlite' && !existsSync(from.path)) throw usageError('store_missing', `no SQLite store at ${from.path}`);
      const kekFile = stringOption(input, 'kek-file') ?? config.store.keyEncryptionKeyFile;
      if (kekFile === undefined) throw usageError('kek_missing', 'keys move into the database sealed: give --kek-file or set store.keyEncryptionKeyFile');
      const kek = loadKek(kekFile);
      const pkiDir = stringOption(input, 'from-pki-dir') ?? config.pkiDir;
      const source = openStore(from);
      const target = openStore(to);
      try {
        await Promise.all([source.ready(), target.ready()]);
        const files = new FileKeyStore(pkiDir);
        const sealedAtSource =
          config.store.keyEncryptionKeyFile !== undefined
            ? new SealedKeyStore(source, loadKek(config.store.keyEncryptionKeyFile), config.store.previousKeyEncryptionKeyFiles.map(loadKek))
            : null;
        const devCa = existsSync(join(pkiDir, DEV_CA.cert)) && existsSync(join(pkiDir, DEV_CA.key));
        const refs = await referencedKeys(source);
        if (devCa && !refs.includes(DEV_CA.ref)) refs.push(DEV_CA.ref);
        const report = await copyStore(
          source,
          target,
          {
            refs,
            async read(ref) {
              if (ref === DEV_CA.ref && devCa) {
                return `${readFileSync(join(pkiDir, DEV_CA.cert), 'utf8').trimEnd()}\n${readFileSync(join(pkiDir, DEV_CA.key), 'utf8')}`;
              }
              if (await source.getSealedKey(ref)) return sealedAtSource ? sealedAtSource.get(ref) : null;
              try {
                return await files.get(ref);
              } catch {
                return null;
              }
            },
            seal: (ref, pem) => ({ kekId: kek.id, sealed: seal(kek, ref, pem) }),
          },
          OPERATOR,
        );
        const result = { from: describeStore(from), to: describeStore(to), ...report };
        ctx.print(result, () =>
          [
            `copied ${result.from} to ${result.to}; every count matches`,
            table(['TABLE', 'ROWS'], Object.entries(report.counts).map(([t, n]) => [t, String(n)])),
            `${report.keys} private keys sealed with key-encryption key ${kek.id}`,
          ].join('\n'),
        );
      } finally {
        await Promise.all([source.close(), target.close()]);
      }
    },
  },
  {
    name: ['store', 'rotate-kek'],
    args: [],
    usage: '',
    summary: 'seal every key in the database with the current key-encryption key (after adding a new one)',
    details: [
      'Rotation: put the new key in store.keyEncryptionKeyFile and the old one in',
      'store.previousKeyEncryptionKeyFiles on every instance and restart them, run this once, then remove',
      'the old key from the configuration. Each key is re-sealed in its own audited transaction.',
    ].join('\n'),
    mode: 'local',
    async run(ctx) {
      const keys = ctx.authority().keys;
      if (!(keys instanceof SealedKeyStore)) throw usageError('kek_missing', 'keys are files under pkiDir here (no store.keyEncryptionKeyFile): there is nothing to re-seal');
      const result = await keys.rotate(OPERATOR);
      const left = await ctx.authority().store.countSealedKeys();
      ctx.print({ ...result, kek: keys.current.id, sealedKeys: left }, () =>
        [
          fields([
            ['re-sealed', String(result.resealed)],
            ['key-encryption key', keys.current.id],
            ['keys per key-encryption key', Object.entries(left).map(([id, n]) => `${id}: ${n}`).join(', ') || 'none'],
          ]),
          ...(result.unopenable.length > 0 ? [`not opened (sealed with a key this process was not given): ${result.unopenable.join(', ')}`] : []),
        ].join('\n'),
      );
      return result.unopenable.length > 0 ? 1 : 0;
    },
  },
  {
    name: ['store', 'generate-kek'],
    args: [],
    usage: '--out <file>',
    summary: 'write a new random 256-bit key-encryption key to a new file (mode 0600)',
    options: { out: { type: 'string', value: 'file', help: 'where to write it; never overwritten' } },
    mode: 'standalone',
    async run(ctx, input) {
      const out = requiredString(input, 'out');
      if (existsSync(out)) throw usageError('kek_exists', `${out} already exists; it is never overwritten`);
      writeFileAtomic(out, generateKekText(), 0o600);
      const kek = loadKek(out);
      ctx.print({ file: out, id: kek.id }, () => `wrote key-encryption key ${kek.id} to ${out}`);
    },
  },
];
