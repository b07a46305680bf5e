import Database from 'better-sqlite3';

/**
 * Every row of the tables a refused request must not touch, read through a separate read-only
 * connection (as another process would see the file), for before/after comparisons.
 */
export function tableSnapshot(databasePath: string) {
  const db = new Database(databasePath, { readonly: true, fileMustExist: true });
  try {
    return {
      factories: db.prepare('SELECT * FROM factories ORDER BY id').all(),
      deviceCas: db.prepare('SELECT * FROM device_cas ORDER BY id').all(),
      devices: db.prepare('SELECT * FROM devices ORDER BY uuid').all(),
      apiTokens: db.prepare('SELECT * FROM api_tokens ORDER BY id').all(),
      auditCount: (db.prepare('SELECT COUNT(*) AS n FROM audit_log').get() as { n: number }).n,
    };
  } finally {
    db.close();
  }
}
