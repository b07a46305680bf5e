import { num, type Queryable, type SqlEngine } from '../engine.js';
import type { ChangeTopic } from '../types.js';

/** Change counters other processes follow, and the notification that wakes them at once. */
export const changes = {
  async bump(engine: SqlEngine, q: Queryable, topic: ChangeTopic): Promise<void> {
    await q.run('UPDATE change_versions SET version = version + 1 WHERE topic = ?', [topic]);
    await engine.announce(q, topic);
  },

  async version(q: Queryable, topic: ChangeTopic): Promise<number> {
    return num((await q.get('SELECT version FROM change_versions WHERE topic = ?', [topic]))?.version ?? 0);
  },
};
