import { TollgateError } from '../errors.js';
import type { RowSet, SqlEngine } from './engine.js';

interface Entry<W> {
  item: W;
  resolve: () => void;
  reject: (e: unknown) => void;
}

/**
 * Group commit: the per-request writes of the gateway and the realm (a token row, an audit row)
 * made while a commit is being prepared share one transaction. On SQLite a batch is what arrived
 * in one event-loop turn (flushed on setImmediate); on PostgreSQL also what arrived while the
 * previous commit was on the wire, one commit at a time. Each caller's promise settles only after
 * the commit that holds its rows, so no answer goes out before its audit record is stored.
 */
export class GroupCommit<W> {
  private pending: Entry<W>[] = [];
  private scheduled = false;
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly engine: SqlEngine,
    /** The new rows `batch` adds, per table. */
    private readonly rowsOf: (batch: readonly W[]) => RowSet[],
  ) {}

  enqueue(item: W): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      // setImmediate rather than a microtask: the batch then takes every request read in the same
      // poll phase, where a microtask would commit after each request's own synchronous chain.
      setImmediate(() => {
        this.scheduled = false;
        void this.flush();
      });
    });
  }

  /** Commits what is queued now (after a commit in flight); resolves when it is settled. Never rejects. */
  async flush(): Promise<void> {
    while (this.inFlight) await this.inFlight;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const run = this.commit(batch);
    this.inFlight = run;
    try {
      await run;
    } finally {
      this.inFlight = null;
    }
  }

  /**
   * One transaction for the batch. If it fails, each entry is retried in a transaction of its own,
   * so one bad entry fails only its own caller; a busy store fails the whole batch at once (each
   * retry would wait as long again).
   */
  private async commit(batch: Entry<W>[]): Promise<void> {
    try {
      await this.engine.insertAll(this.rowsOf(batch.map((e) => e.item)));
    } catch (e) {
      if (batch.length === 1 || (e instanceof TollgateError && e.kind === 'unavailable')) {
        for (const entry of batch) entry.reject(e);
        return;
      }
      for (const entry of batch) {
        try {
          await this.engine.insertAll(this.rowsOf([entry.item]));
        } catch (one) {
          entry.reject(one);
          continue;
        }
        entry.resolve();
      }
      return;
    }
    for (const entry of batch) entry.resolve();
  }
}
