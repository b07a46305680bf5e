/**
 * Versioned schema migrations for the SQLite store. Append only: a released migration is never
 * edited, a change is a new entry. Each runs in its own IMMEDIATE transaction together with the
 * row that records it, so two processes starting on the same file at once cannot both apply it.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE factories (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE device_cas (
        id                  TEXT PRIMARY KEY,
        factory_id          TEXT NOT NULL REFERENCES factories(id) ON DELETE RESTRICT,
        kind                TEXT NOT NULL CHECK (kind IN ('online', 'external')),
        certificate_pem     TEXT NOT NULL,
        fingerprint256      TEXT NOT NULL UNIQUE,
        subject_cn          TEXT NOT NULL,
        not_after           INTEGER NOT NULL,
        state               TEXT NOT NULL CHECK (state IN ('active', 'disabled', 'revoked')),
        state_reason        TEXT,
        key_ref             TEXT,
        created_at          INTEGER NOT NULL,
        CHECK ((kind = 'online') = (key_ref IS NOT NULL))
      ) STRICT;
      CREATE INDEX device_cas_factory ON device_cas(factory_id);

      CREATE TABLE devices (
        uuid                    TEXT PRIMARY KEY,
        factory_id              TEXT NOT NULL REFERENCES factories(id) ON DELETE RESTRICT,
        ca_id                   TEXT NOT NULL REFERENCES device_cas(id) ON DELETE RESTRICT,
        name                    TEXT,
        state                   TEXT NOT NULL CHECK (state IN ('active', 'pending', 'disabled', 'revoked')),
        state_reason            TEXT,
        is_test                 INTEGER NOT NULL CHECK (is_test IN (0, 1)),
        certificate_pem         TEXT NOT NULL,
        certificate_fingerprint TEXT NOT NULL UNIQUE,
        public_key_fingerprint  TEXT NOT NULL,
        not_after               INTEGER NOT NULL,
        created_at              INTEGER NOT NULL,
        updated_at              INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX devices_factory ON devices(factory_id, uuid);
      CREATE INDEX devices_ca ON devices(ca_id);

      CREATE TABLE api_tokens (
        id           TEXT PRIMARY KEY,
        secret_hash  TEXT NOT NULL UNIQUE,
        kind         TEXT NOT NULL CHECK (kind IN ('device', 'api', 'refresh')),
        factory_id   TEXT NOT NULL REFERENCES factories(id) ON DELETE CASCADE,
        device_uuid  TEXT REFERENCES devices(uuid) ON DELETE CASCADE,
        scopes       TEXT NOT NULL,
        description  TEXT,
        service      TEXT,
        subject      TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER,
        revoked_at   INTEGER
      ) STRICT;
      CREATE INDEX api_tokens_factory ON api_tokens(factory_id, kind);
      CREATE INDEX api_tokens_device ON api_tokens(device_uuid);
      CREATE INDEX api_tokens_expiry ON api_tokens(expires_at) WHERE expires_at IS NOT NULL;

      CREATE TABLE signing_keys (
        kid             TEXT PRIMARY KEY,
        alg             TEXT NOT NULL,
        certificate_pem TEXT NOT NULL,
        key_ref         TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('trusted', 'active', 'retired')),
        created_at      INTEGER NOT NULL,
        activated_at    INTEGER
      ) STRICT;
      CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(status) WHERE status = 'active';

      CREATE TABLE audit_log (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        at          INTEGER NOT NULL,
        actor       TEXT NOT NULL,
        action      TEXT NOT NULL,
        outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'denied')),
        factory_id  TEXT,
        target      TEXT,
        reason      TEXT,
        source      TEXT,
        details     TEXT
      ) STRICT;
      CREATE INDEX audit_log_factory ON audit_log(factory_id, id);
      CREATE INDEX audit_log_target ON audit_log(target, id);
      -- The audit trail is append-only: the engine itself refuses to rewrite history.
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

      CREATE TABLE change_versions (
        topic    TEXT PRIMARY KEY,
        version  INTEGER NOT NULL
      ) STRICT;
      INSERT INTO change_versions(topic, version) VALUES ('device_cas', 0), ('signing_keys', 0);
    `,
  },
  {
    version: 2,
    name: 'certificate lifecycle: rotation, retired certificates, factory settings, CA registration codes',
    sql: `
      -- After a rotation the device row holds the new certificate; the one it replaced stays
      -- accepted here until the device first presents the new one.
      ALTER TABLE devices ADD COLUMN previous_certificate_fingerprint TEXT;

      -- Certificates replaced by a rotation: refused for good, whatever their validity period says.
      CREATE TABLE retired_certificates (
        fingerprint256  TEXT PRIMARY KEY,
        device_uuid     TEXT NOT NULL REFERENCES devices(uuid) ON DELETE CASCADE,
        retired_at      INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX retired_certificates_device ON retired_certificates(device_uuid);

      CREATE TABLE factory_settings (
        factory_id            TEXT PRIMARY KEY REFERENCES factories(id) ON DELETE CASCADE,
        jit_mode              TEXT NOT NULL CHECK (jit_mode IN ('off', 'pending', 'active')),
        cert_max_days         INTEGER,
        test_cert_max_hours   INTEGER,
        key_types             TEXT,
        updated_at            INTEGER NOT NULL
      ) STRICT;

      -- Proof of possession for external CAs: single-use codes, kept only as hashes.
      CREATE TABLE ca_registration_codes (
        code_hash   TEXT PRIMARY KEY,
        factory_id  TEXT NOT NULL REFERENCES factories(id) ON DELETE CASCADE,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: 'retired certificates outlive their device',
    sql: `
      -- A superseded certificate must stay refused after its device record is deleted, or it could
      -- come back through just-in-time registration. The deny-list keeps the UUID as a plain value.
      CREATE TABLE retired_certificates_v3 (
        fingerprint256  TEXT PRIMARY KEY,
        device_uuid     TEXT NOT NULL,
        retired_at      INTEGER NOT NULL
      ) STRICT;
      INSERT INTO retired_certificates_v3 SELECT fingerprint256, device_uuid, retired_at FROM retired_certificates;
      DROP TABLE retired_certificates;
      ALTER TABLE retired_certificates_v3 RENAME TO retired_certificates;
      CREATE INDEX retired_certificates_device ON retired_certificates(device_uuid);
    `,
  },
  {
    version: 4,
    name: 'audit retention: records older than a forward-only cutoff may be deleted',
    sql: `
      -- One row: audit records written before \`cutoff\` (ms since the epoch) may be deleted, newer
      -- ones may not. The cutoff only moves forward, so history that was protected stays protected
      -- until it is older than what retention allows.
      CREATE TABLE audit_retention (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        cutoff  INTEGER NOT NULL CHECK (cutoff >= 0)
      ) STRICT;
      INSERT INTO audit_retention(id, cutoff) VALUES (1, 0);
      CREATE TRIGGER audit_retention_forward_only BEFORE UPDATE ON audit_retention
        WHEN NEW.cutoff < OLD.cutoff OR NEW.id IS NOT OLD.id
        BEGIN SELECT RAISE(ABORT, 'the audit retention cutoff only moves forward'); END;
      -- Also refuses INSERT OR REPLACE, which would otherwise reset the row without an UPDATE.
      CREATE TRIGGER audit_retention_no_insert BEFORE INSERT ON audit_retention
        BEGIN SELECT RAISE(ABORT, 'the audit retention cutoff only moves forward'); END;
      CREATE TRIGGER audit_retention_no_delete BEFORE DELETE ON audit_retention
        BEGIN SELECT RAISE(ABORT, 'the audit retention cutoff only moves forward'); END;

      -- Still append-only for every record at or after the cutoff; with the cutoff row missing,
      -- COALESCE makes every record protected (fail closed).
      DROP TRIGGER audit_log_no_delete;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        WHEN OLD.at >= COALESCE((SELECT cutoff FROM audit_retention WHERE id = 1), 0)
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    `,
  },
  {
    version: 5,
    name: 'next keys devices announce before a certificate rotation',
    sql: `
      -- A device may announce the public key its next certificate will certify (a certificate
      -- rotation's "lock" step). While an announcement stands, re-enrollment certifies that key only.
      CREATE TABLE device_next_keys (
        device_uuid             TEXT PRIMARY KEY REFERENCES devices(uuid) ON DELETE CASCADE,
        public_key_fingerprint  TEXT NOT NULL,
        announced_at            INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 6,
    name: 'console sign-in codes and audit filters by actor',
    sql: `
      -- Single-use codes that sign the web console in as the operator; only their SHA-256 is kept.
      CREATE TABLE console_signin_codes (
        code_hash   TEXT PRIMARY KEY,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX audit_log_factory_actor ON audit_log(factory_id, actor, id);
    `,
  },
  {
    version: 7,
    name: 'token lineage: the token that created a token',
    sql: `
      -- The token that created this one (an API token creating a token through the admin API);
      -- NULL for the operator's. A plain value, not a foreign key: revoking a token revokes its
      -- descendants, found through this column.
      ALTER TABLE api_tokens ADD COLUMN parent_id TEXT;
      CREATE INDEX api_tokens_parent ON api_tokens(parent_id) WHERE parent_id IS NOT NULL;
    `,
  },
  {
    version: 8,
    name: 'devices hold no refresh tokens',
    sql: `
      -- A device's refresh token outlived the device token it came from (an hour) by up to 30 days,
      -- its certificate's renewal and a key change. Devices get none any more; those issued go.
      DELETE FROM api_tokens WHERE kind = 'refresh' AND device_uuid IS NOT NULL;
    `,
  },
  {
    version: 9,
    name: 'tombstones of deleted devices',
    sql: `
      -- What stays of a deleted device: its UUID is not free again. Just-in-time registration never
      -- brings it back; a UUID that was revoked is never used again by anyone; another factory cannot
      -- take it; a test device's UUID is only ever a test device's. Deleting a UUID again keeps the
      -- strongest facts (revoked once, test once). Its certificates go on the retired list.
      CREATE TABLE device_tombstones (
        uuid        TEXT PRIMARY KEY,
        factory_id  TEXT NOT NULL REFERENCES factories(id) ON DELETE CASCADE,
        was_test    INTEGER NOT NULL CHECK (was_test IN (0, 1)),
        revoked     INTEGER NOT NULL CHECK (revoked IN (0, 1)),
        deleted_at  INTEGER NOT NULL
      ) STRICT;
    `,
  },
];
