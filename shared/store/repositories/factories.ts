import { num, str, numOrNull, type Queryable, type Row } from '../engine.js';
import type { Factory, FactorySettings, JitMode } from '../types.js';

function toFactory(r: Row): Factory {
  return { id: str(r.id), name: str(r.name), createdAt: num(r.created_at) };
}

function toSettings(r: Row): FactorySettings {
  return {
    factoryId: str(r.factory_id),
    jitMode: str(r.jit_mode) as JitMode,
    certMaxDays: numOrNull(r.cert_max_days),
    testCertMaxHours: numOrNull(r.test_cert_max_hours),
    keyTypes: r.key_types === null || r.key_types === undefined ? null : (JSON.parse(str(r.key_types)) as string[]),
    updatedAt: num(r.updated_at),
  };
}

/** Factories and their lifecycle settings. */
export const factories = {
  async insert(q: Queryable, f: Factory): Promise<void> {
    await q.run('INSERT INTO factories(id, name, created_at) VALUES (?, ?, ?)', [f.id, f.name, f.createdAt]);
  },

  async get(q: Queryable, id: string): Promise<Factory | null> {
    const r = await q.get('SELECT * FROM factories WHERE id = ?', [id]);
    return r ? toFactory(r) : null;
  },

  async getByName(q: Queryable, name: string): Promise<Factory | null> {
    const r = await q.get('SELECT * FROM factories WHERE name = ?', [name]);
    return r ? toFactory(r) : null;
  },

  async list(q: Queryable): Promise<Factory[]> {
    return (await q.all('SELECT * FROM factories ORDER BY name')).map(toFactory);
  },

  async settings(q: Queryable, factoryId: string): Promise<FactorySettings | null> {
    const r = await q.get('SELECT * FROM factory_settings WHERE factory_id = ?', [factoryId]);
    return r ? toSettings(r) : null;
  },

  async putSettings(q: Queryable, s: FactorySettings): Promise<void> {
    await q.run(
      `INSERT INTO factory_settings(factory_id, jit_mode, cert_max_days, test_cert_max_hours, key_types, updated_at)
       VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT(factory_id) DO UPDATE SET jit_mode = excluded.jit_mode, cert_max_days = excluded.cert_max_days,
         test_cert_max_hours = excluded.test_cert_max_hours, key_types = excluded.key_types, updated_at = excluded.updated_at`,
      [s.factoryId, s.jitMode, s.certMaxDays, s.testCertMaxHours, s.keyTypes === null ? null : JSON.stringify(s.keyTypes), s.updatedAt],
    );
  },
};
