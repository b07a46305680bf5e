/**
 * Versioned schema migrations, one list for both engines. Append only: a released migration is
 * never edited, a change is a new entry with its SQLite and its PostgreSQL form, so a version
 * number means the same schema on either engine (and `store copy` can rely on it). Each runs in
 * its own transaction together with the row that records it, so two processes starting at once
 * cannot both apply it (SQLite: an IMMEDIATE transaction; PostgreSQL: a transaction-scoped
 * advisory lock).
 */
export interface Migration {
  version: number;
  name: string;
  sqlite: string;
  postgres: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sqlite: `
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
    postgres: `
      CREATE TABLE factories (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        created_at  BIGINT NOT NULL
      );

      CREATE TABLE device_cas (
        id                  TEXT PRIMARY KEY,
        factory_id          TEXT NOT NULL REFERENCES factories(id) ON DELETE RESTRICT,
        kind                TEXT NOT NULL CHECK (kind IN ('online', 'external')),
        certificate_pem     TEXT NOT NULL,
        fingerprint256      TEXT NOT NULL UNIQUE,
        subject_cn          TEXT NOT NULL,
        not_after           BIGINT NOT NULL,
        state               TEXT NOT NULL CHECK (state IN ('active', 'disabled', 'revoked')),
        state_reason        TEXT,
        key_ref             TEXT,
        created_at          BIGINT NOT NULL,
        CHECK ((kind = 'online') = (key_ref IS NOT NULL))
      );
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
        not_after               BIGINT NOT NULL,
        created_at              BIGINT NOT NULL,
        updated_at              BIGINT NOT NULL
      );
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
        created_at   BIGINT NOT NULL,
        expires_at   BIGINT,
        revoked_at   BIGINT
      );
      CREATE INDEX api_tokens_factory ON api_tokens(factory_id, kind);
      CREATE INDEX api_tokens_device ON api_tokens(device_uuid);
      CREATE INDEX api_tokens_expiry ON api_tokens(expires_at) WHERE expires_at IS NOT NULL;

      CREATE TABLE signing_keys (
        kid             TEXT PRIMARY KEY,
        alg             TEXT NOT NULL,
        certificate_pem TEXT NOT NULL,
        key_ref         TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('trusted', 'active', 'retired')),
        created_at      BIGINT NOT NULL,
        activated_at    BIGINT
      );
      CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(status) WHERE status = 'active';

      -- Explicit ids are allowed (store copy keeps them, so audit cursors stay valid).
      CREATE TABLE audit_log (
        id          BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        at          BIGINT NOT NULL,
        actor       TEXT NOT NULL,
        action      TEXT NOT NULL,
        outcome     TEXT NOT NULL CHECK (outcome IN ('success', 'denied')),
        factory_id  TEXT,
        target      TEXT,
        reason      TEXT,
        source      TEXT,
        details     TEXT
      );
      CREATE INDEX audit_log_factory ON audit_log(factory_id, id);
      CREATE INDEX audit_log_target ON audit_log(target, id);
      -- The audit trail is append-only: the engine itself refuses to rewrite history.
      CREATE FUNCTION tollgate_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION tollgate_audit_append_only();
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION tollgate_audit_append_only();
      CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION tollgate_audit_append_only();

      CREATE TABLE change_versions (
        topic    TEXT PRIMARY KEY,
        version  BIGINT NOT NULL
      );
      INSERT INTO change_versions(topic, version) VALUES ('device_cas', 0), ('signing_keys', 0);
    `,
  },
  {
    version: 2,
    name: 'certificate lifecycle: rotation, retired certificates, factory settings, CA registration codes',
    sqlite: `
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
    postgres: `
      ALTER TABLE devices ADD COLUMN previous_certificate_fingerprint TEXT;

      CREATE TABLE retired_certificates (
        fingerprint256  TEXT PRIMARY KEY,
        device_uuid     TEXT NOT NULL REFERENCES devices(uuid) ON DELETE CASCADE,
        retired_at      BIGINT NOT NULL
      );
      CREATE INDEX retired_certificates_device ON retired_certificates(device_uuid);

      CREATE TABLE factory_settings (
        factory_id            TEXT PRIMARY KEY REFERENCES factories(id) ON DELETE CASCADE,
        jit_mode              TEXT NOT NULL CHECK (jit_mode IN ('off', 'pending', 'active')),
        cert_max_days         INTEGER,
        test_cert_max_hours   INTEGER,
        key_types             TEXT,
        updated_at            BIGINT NOT NULL
      );

      CREATE TABLE ca_registration_codes (
        code_hash   TEXT PRIMARY KEY,
        factory_id  TEXT NOT NULL REFERENCES factories(id) ON DELETE CASCADE,
        created_at  BIGINT NOT NULL,
        expires_at  BIGINT NOT NULL
      );
    `,
  },
  {
    version: 3,
    name: 'retired certificates outlive their device',
    sqlite: `
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
    postgres: `
      ALTER TABLE retired_certificates DROP CONSTRAINT retired_certificates_device_uuid_fkey;
    `,
  },
  {
    version: 4,
    name: 'audit retention: records older than a forward-only cutoff may be deleted',
    sqlite: `
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
    postgres: `
      CREATE TABLE audit_retention (
        id      INTEGER PRIMARY KEY CHECK (id = 1),
        cutoff  BIGINT NOT NULL CHECK (cutoff >= 0)
      );
      INSERT INTO audit_retention(id, cutoff) VALUES (1, 0);
      CREATE FUNCTION tollgate_audit_retention_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.cutoff >= OLD.cutoff THEN RETURN NEW; END IF;
          RAISE EXCEPTION 'the audit retention cutoff only moves forward';
        END $$;
      CREATE TRIGGER audit_retention_forward_only BEFORE INSERT OR UPDATE OR DELETE ON audit_retention
        FOR EACH ROW EXECUTE FUNCTION tollgate_audit_retention_forward_only();
      CREATE TRIGGER audit_retention_no_truncate BEFORE TRUNCATE ON audit_retention
        FOR EACH STATEMENT EXECUTE FUNCTION tollgate_audit_retention_forward_only();

      DROP TRIGGER audit_log_no_delete ON audit_log;
      CREATE FUNCTION tollgate_audit_log_delete_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF OLD.at >= COALESCE((SELECT cutoff FROM audit_retention WHERE id = 1), 0) THEN
            RAISE EXCEPTION 'audit_log is append-only';
          END IF;
          RETURN OLD;
        END $$;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION tollgate_audit_log_delete_guard();
    `,
  },
  {
    version: 5,
    name: 'next keys devices announce before a certificate rotation',
    sqlite: `
      -- A device may announce the public key its next certificate will certify (a certificate
      -- rotation's "lock" step). While an announcement stands, re-enrollment certifies that key only.
      CREATE TABLE device_next_keys (
        device_uuid             TEXT PRIMARY KEY REFERENCES devices(uuid) ON DELETE CASCADE,
        public_key_fingerprint  TEXT NOT NULL,
        announced_at            INTEGER NOT NULL
      ) STRICT;
    `,
    postgres: `
      CREATE TABLE device_next_keys (
        device_uuid             TEXT PRIMARY KEY REFERENCES devices(uuid) ON DELETE CASCADE,
        public_key_fingerprint  TEXT NOT NULL,
        announced_at            BIGINT NOT NULL
      );
    `,
  },
  {
    version: 6,
    name: 'console sign-in codes and audit filters by actor',
    sqlite: `
      -- Single-use codes that sign the web console in as the operator; only their SHA-256 is kept.
      CREATE TABLE console_signin_codes (
        code_hash   TEXT PRIMARY KEY,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX audit_log_factory_actor ON audit_log(factory_id, actor, id);
    `,
    postgres: `
      CREATE TABLE console_signin_codes (
        code_hash   TEXT PRIMARY KEY,
        created_at  BIGINT NOT NULL,
        expires_at  BIGINT NOT NULL
      );
      CREATE INDEX audit_log_factory_actor ON audit_log(factory_id, actor, id);
    `,
  },
  {
    version: 7,
    name: 'token lineage: the token that created a token',
    sqlite: `
      -- The token that created this one (an API token creating a token through the admin API);
      -- NULL for the operator's. A plain value, not a foreign key: revoking a token revokes its
      -- descendants, found through this column.
      ALTER TABLE api_tokens ADD COLUMN parent_id TEXT;
      CREATE INDEX api_tokens_parent ON api_tokens(parent_id) WHERE parent_id IS NOT NULL;
    `,
    postgres: `
      ALTER TABLE api_tokens ADD COLUMN parent_id TEXT;
      CREATE INDEX api_tokens_parent ON api_tokens(parent_id) WHERE parent_id IS NOT NULL;
    `,
  },
  {
    version: 8,
    name: 'devices hold no refresh tokens',
    sqlite: `
      -- A device's refresh token outlived the device token it came from (an hour) by up to 30 days,
      -- its certificate's renewal and a key change. Devices get none any more; those issued go.
      DELETE FROM api_tokens WHERE kind = 'refresh' AND device_uuid IS NOT NULL;
    `,
    postgres: `
      DELETE FROM api_tokens WHERE kind = 'refresh' AND device_uuid IS NOT NULL;
    `,
  },
  {
    version: 9,
    name: 'tombstones of deleted devices',
    sqlite: `
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
    postgres: `
      CREATE TABLE device_tombstones (
        uuid        TEXT PRIMARY KEY,
        factory_id  TEXT NOT NULL REFERENCES factories(id) ON DELETE CASCADE,
        was_test    INTEGER NOT NULL CHECK (was_test IN (0, 1)),
        revoked     INTEGER NOT NULL CHECK (revoked IN (0, 1)),
        deleted_at  BIGINT NOT NULL
      );
    `,
  },
  {
    version: 10,
    name: 'several instances: sealed keys in the database, maintenance runs, operator credentials, shared limits',
    sqlite: `
      -- Private keys in the database, sealed with the key-encryption key (AES-256-GCM, the row's
      -- reference as associated data): the plaintext never reaches the database.
      CREATE TABLE stored_keys (
        ref         TEXT PRIMARY KEY,
        kek_id      TEXT NOT NULL,
        sealed      TEXT NOT NULL,
        created_at  INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX stored_keys_kek ON stored_keys(kek_id);

      -- Scheduled maintenance: when each job last ran, and until when the instance running it holds it.
      CREATE TABLE maintenance_runs (
        job          TEXT PRIMARY KEY,
        last_run_at  INTEGER NOT NULL,
        lease_until  INTEGER NOT NULL
      ) STRICT;

      -- Operator credentials for the admin API (every factory, the operator's commands). Hashed.
      CREATE TABLE operator_tokens (
        id           TEXT PRIMARY KEY,
        secret_hash  TEXT NOT NULL UNIQUE,
        description  TEXT,
        created_at   INTEGER NOT NULL,
        expires_at   INTEGER,
        revoked_at   INTEGER
      ) STRICT;
    `,
    postgres: `
      CREATE TABLE stored_keys (
        ref         TEXT PRIMARY KEY,
        kek_id      TEXT NOT NULL,
        sealed      TEXT NOT NULL,
        created_at  BIGINT NOT NULL
      );
      CREATE INDEX stored_keys_kek ON stored_keys(kek_id);

      CREATE TABLE maintenance_runs (
        job          TEXT PRIMARY KEY,
        last_run_at  BIGINT NOT NULL,
        lease_until  BIGINT NOT NULL
      );

      CREATE TABLE operator_tokens (
        id           TEXT PRIMARY KEY,
        secret_hash  TEXT NOT NULL UNIQUE,
        description  TEXT,
        created_at   BIGINT NOT NULL,
        expires_at   BIGINT,
        revoked_at   BIGINT
      );

      -- Request limits shared by every instance. Unlogged: a bucket is worth nothing after a
      -- crash (PostgreSQL empties these tables then, which lets requests through, as a restart of
      -- an in-memory limiter would), and skipping the WAL keeps each request's write cheap.
      CREATE UNLOGGED TABLE rate_limit_buckets (
        key     TEXT PRIMARY KEY,
        tokens  DOUBLE PRECISION NOT NULL,
        at      BIGINT NOT NULL
      );
      CREATE UNLOGGED TABLE failure_backoff (
        key            TEXT PRIMARY KEY,
        count          INTEGER NOT NULL,
        window_start   BIGINT NOT NULL,
        blocked_until  BIGINT NOT NULL
      );
      -- AWS instance identity replay memory: the newest signingTime accepted per instance.
      CREATE TABLE aws_replay (
        account  TEXT PRIMARY KEY,
        newest   BIGINT NOT NULL,
        seen_at  BIGINT NOT NULL
      );

      -- One token from a bucket: 0 when taken, else the seconds until one is available. The same
      -- arithmetic as the in-memory limiter (shared/ops/rate-limit.ts), on a row lock instead of
      -- a Map, so concurrent instances take from one bucket.
      CREATE FUNCTION tollgate_take(p_key TEXT, p_burst DOUBLE PRECISION, p_rate DOUBLE PRECISION, p_now BIGINT)
      RETURNS DOUBLE PRECISION LANGUAGE plpgsql AS $$
        DECLARE v_tokens DOUBLE PRECISION;
        BEGIN
          INSERT INTO rate_limit_buckets AS b (key, tokens, at) VALUES (p_key, p_burst, p_now)
            ON CONFLICT (key) DO UPDATE
              SET tokens = LEAST(p_burst, b.tokens + GREATEST(0, p_now - b.at) / 1000.0 * p_rate), at = p_now
            RETURNING tokens INTO v_tokens;
          IF v_tokens >= 1 THEN
            UPDATE rate_limit_buckets SET tokens = v_tokens - 1 WHERE key = p_key;
            RETURN 0;
          END IF;
          RETURN GREATEST(1, CEIL((1 - v_tokens) / p_rate));
        END $$;

      -- One failed credential: the block it causes in seconds (0 below the threshold).
      CREATE FUNCTION tollgate_fail(p_key TEXT, p_now BIGINT, p_threshold INTEGER, p_window_ms BIGINT,
                                    p_block_s DOUBLE PRECISION, p_max_block_s DOUBLE PRECISION)
      RETURNS DOUBLE PRECISION LANGUAGE plpgsql AS $$
        DECLARE r failure_backoff%ROWTYPE; v_block DOUBLE PRECISION := 0;
        BEGIN
          INSERT INTO failure_backoff(key, count, window_start, blocked_until) VALUES (p_key, 0, p_now, 0)
            ON CONFLICT (key) DO NOTHING;
          SELECT * INTO r FROM failure_backoff WHERE key = p_key FOR UPDATE;
          IF p_now - r.window_start > p_window_ms AND r.blocked_until <= p_now AND p_now - r.blocked_until > p_window_ms THEN
            r.count := 0; r.window_start := p_now; r.blocked_until := 0;
          END IF;
          r.count := r.count + 1;
          IF r.count >= p_threshold THEN
            v_block := LEAST(p_max_block_s, p_block_s * 2 ^ LEAST(30, r.count - p_threshold));
            r.blocked_until := p_now + (v_block * 1000)::BIGINT;
          END IF;
          UPDATE failure_backoff SET count = r.count, window_start = r.window_start, blocked_until = r.blocked_until
           WHERE key = p_key;
          RETURN v_block;
        END $$;

      -- The checks of one request in one round trip: back-off first, then the subject's bucket,
      -- then the source's. reason is NULL when the request may go on.
      CREATE FUNCTION tollgate_limit(p_backoff_key TEXT, p_subject_key TEXT, p_source_key TEXT, p_now BIGINT,
                                     p_subject_burst DOUBLE PRECISION, p_subject_rate DOUBLE PRECISION,
                                     p_source_burst DOUBLE PRECISION, p_source_rate DOUBLE PRECISION,
                                     OUT reason TEXT, OUT retry_after DOUBLE PRECISION)
      LANGUAGE plpgsql AS $$
        DECLARE v_until BIGINT; v_wait DOUBLE PRECISION;
        BEGIN
          IF p_backoff_key IS NOT NULL THEN
            SELECT blocked_until INTO v_until FROM failure_backoff WHERE key = p_backoff_key;
            IF v_until IS NOT NULL AND v_until > p_now THEN
              reason := 'credentials_backoff'; retry_after := GREATEST(1, CEIL((v_until - p_now) / 1000.0)); RETURN;
            END IF;
          END IF;
          IF p_subject_key IS NOT NULL THEN
            v_wait := tollgate_take(p_subject_key, p_subject_burst, p_subject_rate, p_now);
            IF v_wait > 0 THEN reason := 'rate_limited'; retry_after := v_wait; RETURN; END IF;
          END IF;
          IF p_source_key IS NOT NULL THEN
            v_wait := tollgate_take(p_source_key, p_source_burst, p_source_rate, p_now);
            IF v_wait > 0 THEN reason := 'rate_limited'; retry_after := v_wait; RETURN; END IF;
          END IF;
        END $$;
    `,
  },
];
