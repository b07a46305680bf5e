import { createHash, randomBytes, randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { newSecret } from '../../shared/secrets.js';
import { SqliteStore } from '../../shared/store/index.js';
import type { Fixture } from './fixture.js';

/** A device token a benchmark client can present: Basic username (the device UUID) and secret. */
export interface SampledCredential {
  username: string;
  secret: string;
}

/**
 * Fills a fixture's store with many devices and tokens, straight through better-sqlite3 in large
 * transactions: the authority functions would sign a certificate per device and take hours for a
 * million. The store is opened with SqliteStore first so every migration has run and the rows
 * land in the real schema (constraints, indexes) exactly as the service reads it.
 *
 * Returns `sample` of the tokens with their secrets (real device-token secrets, evenly spread over
 * the fill), so that a load generator can present tokens from all over the index rather than one
 * token again and again; the other tokens' secrets are never known, only their hashes are stored.
 */
export function bulkFill(f: Fixture, devices: number, tokens: number, log: (m: string) => void, sample = 0): SampledCredential[] {
  new SqliteStore(f.databasePath).close();
  const db = new Database(f.databasePath);
  db.pragma('journal_mode = WAL');
  // Bulk load only: a crash here loses a benchmark fixture, nothing else.
  db.pragma('synchronous = OFF');
  // Random keys (token ids, secret hashes, fingerprints) land all over their indexes: with the
  // default 2 MB page cache a 10-million-row fill becomes disk-bound. 1 GiB keeps it in memory.
  db.pragma('cache_size = -1048576');
  const now = Date.now();
  const notAfter = now + 365 * 86_400_000;
  const insertDevice = db.prepare(
    `INSERT INTO devices(uuid, factory_id, ca_id, name, state, state_reason, is_test, certificate_pem, certificate_fingerprint,
                         public_key_fingerprint, not_after, created_at, updated_at)
     VALUES (?, ?, ?, NULL, 'active', NULL, 0, ?, ?, ?, ?, ?, ?)`,
  );
  const insertToken = db.prepare(
    `INSERT INTO api_tokens(id, secret_hash, kind, factory_id, device_uuid, scopes, description, service, subject, created_at, expires_at, revoked_at)
     VALUES (?, ?, 'device', ?, ?, '["containers:read"]', NULL, NULL, ?, ?, ?, NULL)`,
  );
  // Real certificate text, so rows weigh what enrolled devices weigh.
  const pem = f.device.certPem;
  const uuids: string[] = [];
  const batch = 50_000;
  const started = Date.now();
  const progress = (what: string, done: number, total: number) =>
    log(`scale: ${what} ${done.toLocaleString('en')} / ${total.toLocaleString('en')} (${Math.round((Date.now() - started) / 1000)} s)`);

  for (let done = 0; done < devices; ) {
    const n = Math.min(batch, devices - done);
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        const uuid = randomUUID();
        const fp = randomBytes(32).toString('hex');
        insertDevice.run(uuid, f.factoryId, f.caId, pem, fp, fp, notAfter, now, now);
        uuids.push(uuid);
      }
    })();
    done += n;
    if (done % (batch * 10) === 0 || done === devices) progress('devices', done, devices);
  }
  const every = sample > 0 ? Math.max(1, Math.floor(tokens / sample)) : 0;
  const sampled: SampledCredential[] = [];
  for (let done = 0; done < tokens; ) {
    const n = Math.min(batch, tokens - done);
    db.transaction(() => {
      for (let i = 0; i < n; i++) {
        const uuid = uuids[(done + i) % uuids.length] ?? f.device.uuid;
        let hash: string;
        if (every > 0 && (done + i) % every === 0 && sampled.length < sample) {
          const { secret, secretHash } = newSecret('device');
          sampled.push({ username: uuid, secret });
          hash = secretHash;
        } else {
          hash = createHash('sha256').update(randomBytes(32)).digest('hex');
        }
        insertToken.run('tok_' + randomBytes(12).toString('base64url'), hash, f.factoryId, uuid, uuid, now, notAfter);
      }
    })();
    done += n;
    if (done % (batch * 20) === 0 || done === tokens) progress('tokens', done, tokens);
  }
  db.pragma('wal_checkpoint(TRUNCATE)');
  db.close();
  return sampled;
}
