import { conflict } from '../../errors.js';
import type { AuditEntry, Factory, FactorySettings, JitMode, Store } from '../types.js';
import { isUniqueViolation, num, numOrNull, str, type Row, type SqliteCore } from './core.js';

/** Factories and their lifecycle settings. */

function toFactory(r: Row): Factory {
  return { id: str(r.id), name: str(r.name), createdAt: num(r.created_at) };
}

export function factoryRows(core: SqliteCore): Pick<Store, 'createFactory' | 'getFactory' | 'getFactoryByName' | 'listFactories' | 'getFactorySettings' | 'putFactorySettings'> {
  return {
  async createFactory(factory: Factory, audit: AuditEntry): Promise<Factory> {
    return core.write(() => {
      try {
        core.stmt('INSERT INTO factories(id, name, created_at) VALUES (?, ?, ?)').run(
          factory.id,
          factory.name,
          factory.createdAt,
        );
      } catch (e) {
        if (isUniqueViolation(e)) throw conflict('factory_exists', `a factory named "${factory.name}" already exists`);
        throw e;
      }
      core.audit(audit);
      return factory;
    });
  },

  async getFactory(id: string): Promise<Factory | null> {
    const r = core.read(() => core.stmt('SELECT * FROM factories WHERE id = ?').get(id) as Row | undefined);
    return r ? toFactory(r) : null;
  },

  async getFactoryByName(name: string): Promise<Factory | null> {
    const r = core.read(() => core.stmt('SELECT * FROM factories WHERE name = ?').get(name) as Row | undefined);
    return r ? toFactory(r) : null;
  },

  async listFactories(): Promise<Factory[]> {
    return core.read(() => (core.stmt('SELECT * FROM factories ORDER BY name').all() as Row[]).map(toFactory));
  },

  async getFactorySettings(factoryId: string): Promise<FactorySettings | null> {
    const r = core.read(() => core.stmt('SELECT * FROM factory_settings WHERE factory_id = ?').get(factoryId) as Row | undefined);
    if (!r) return null;
    return {
      factoryId: str(r.factory_id),
      jitMode: str(r.jit_mode) as JitMode,
      certMaxDays: numOrNull(r.cert_max_days),
      testCertMaxHours: numOrNull(r.test_cert_max_hours),
      keyTypes: r.key_types === null || r.key_types === undefined ? null : (JSON.parse(str(r.key_types)) as string[]),
      updatedAt: num(r.updated_at),
    };
  },

  async putFactorySettings(settings: FactorySettings, audit: AuditEntry): Promise<FactorySettings> {
    return core.write(() => {
      core.stmt(
        `INSERT INTO factory_settings(factory_id, jit_mode, cert_max_days, test_cert_max_hours, key_types, updated_at)
         VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT(factory_id) DO UPDATE SET jit_mode = excluded.jit_mode, cert_max_days = excluded.cert_max_days,
           test_cert_max_hours = excluded.test_cert_max_hours, key_types = excluded.key_types, updated_at = excluded.updated_at`,
      ).run(
        settings.factoryId,
        settings.jitMode,
        settings.certMaxDays,
        settings.testCertMaxHours,
        settings.keyTypes === null ? null : JSON.stringify(settings.keyTypes),
        settings.updatedAt,
      );
      core.audit(audit);
      return settings;
    });
  }
  };
}
