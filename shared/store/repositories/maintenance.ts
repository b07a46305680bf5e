import type { Queryable } from '../engine.js';

/** When each scheduled job last ran, and until when the instance running it holds it. */
export const maintenance = {
  /**
   * Claims a run of `job` at `now` if the last one started at least `intervalMs` ago and no other
   * instance holds it; true when this caller may run it.
   */
  async claim(q: Queryable, job: string, now: number, intervalMs: number, leaseMs: number): Promise<boolean> {
    await q.run('INSERT INTO maintenance_runs(job, last_run_at, lease_until) VALUES (?, 0, 0) ON CONFLICT DO NOTHING', [job]);
    const changed = await q.run('UPDATE maintenance_runs SET last_run_at = ?, lease_until = ? WHERE job = ? AND last_run_at <= ? AND lease_until <= ?', [
      now,
      now + leaseMs,
      job,
      now - intervalMs,
      now,
    ]);
    return changed === 1;
  },

  async release(q: Queryable, job: string, leaseUntil: number): Promise<void> {
    await q.run('UPDATE maintenance_runs SET lease_until = 0 WHERE job = ? AND lease_until = ?', [job, leaseUntil]);
  },
};
