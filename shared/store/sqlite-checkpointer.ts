import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/**
 * WAL checkpoints off the event loop, for the long-running services.
 *
 * SQLite checkpoints inside the commit that takes the WAL past `wal_autocheckpoint` pages: that
 * commit copies the WAL into the database file and waits for its fsync, and every request of the
 * process waits behind it. Measured on the realm (bench/, probe realm): with automatic checkpoints
 * the process spent about 6% of its time off-CPU waiting for them, and its p99 rose by a third.
 *
 * A service's writer connection therefore turns the automatic checkpoint off, and this worker
 * thread, on a connection of its own, runs a PASSIVE checkpoint every `intervalMs`. PASSIVE never
 * waits for a reader or writer and never blocks one; what it cannot copy yet (pages a reader still
 * needs) it copies on a later turn. Once everything is copied, the next writer starts the WAL from
 * its beginning again, so the file stays as small as before. The worker is a few lines run with
 * `eval` so that it loads the same way from the compiled code and the TypeScript sources.
 */

/** The checkpoint worker's code (CommonJS, evaluated): a connection, a timer, and a stop message. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.driver);
// fileMustExist: a store whose file was deleted meanwhile must not get an empty one at its path.
const db = new Database(workerData.path, { timeout: workerData.busyTimeoutMs, fileMustExist: true });
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // A full disk or a busy lock: the next turn tries again. The writers meet a full disk
    // themselves and report it (store_full).
  }
};
const timer = setInterval(checkpoint, workerData.intervalMs);
parentPort.on('message', () => {
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

export interface CheckpointerOptions {
  /** How often the worker checkpoints (ms). */
  intervalMs?: number;
  busyTimeoutMs?: number;
  /** Called if the worker ends before stop() asked it to: the connection must checkpoint again itself. */
  onLost?: () => void;
}

export class BackgroundCheckpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private stopping = false;

  constructor(path: string, options: CheckpointerOptions = {}) {
    const driver = createRequire(import.meta.url).resolve('better-sqlite3');
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { path, driver, intervalMs: options.intervalMs ?? 200, busyTimeoutMs: options.busyTimeoutMs ?? 5000 },
    });
    this.exited = new Promise((resolve) =>
      this.worker.once('exit', () => {
        if (!this.stopping) options.onLost?.();
        resolve();
      }),
    );
    // A worker that fails (its exit follows) hands checkpointing back through onLost.
    this.worker.on('error', () => undefined);
    // The services stop by closing their store; the worker must not keep a process alive.
    this.worker.unref();
  }

  /** Checkpoints once more, then stops the worker and closes its connection. */
  stop(): Promise<void> {
    // A worker that already exited ignores the message; `exited` has settled then. Until the
    // worker is gone, the process must stay up to see it go (unref'd, it would end first, and a
    // caller awaiting this would never resume).
    this.stopping = true;
    this.worker.ref();
    this.worker.postMessage('stop');
    return this.exited;
  }
}

/** A connection's share of the one checkpointer of its database file in this process. */
export interface CheckpointerLease {
  /** Gives the share back; the last one stops the worker (after one more checkpoint). */
  release(): Promise<void>;
}

interface SharedCheckpointer {
  checkpointer: BackgroundCheckpointer;
  /** Each holder's onLost, by lease. */
  holders: Map<CheckpointerLease, () => void>;
}

/**
 * One checkpointer per database file per process, however many services there opened it:
 * `tollgate up` runs the gateway (with the admin API) and the realm in one process, each with its
 * own store connection, and one worker copies the WAL for both as well as two would, for one
 * thread's memory and one timer.
 */
const SHARED = new Map<string, SharedCheckpointer>();

/**
 * A share of the checkpointer of `path` (an absolute path: one file, one key), started by the first
 * holder with its options. If the worker is lost, every holder hears it (`onLost`), and the next
 * holder to come starts a new one.
 */
export function shareCheckpointer(path: string, options: CheckpointerOptions & { onLost: () => void }): CheckpointerLease {
  let shared = SHARED.get(path);
  if (!shared) {
    const holders = new Map<CheckpointerLease, () => void>();
    const checkpointer = new BackgroundCheckpointer(path, {
      ...options,
      onLost: () => {
        if (SHARED.get(path)?.checkpointer === checkpointer) SHARED.delete(path);
        for (const onLost of holders.values()) onLost();
      },
    });
    shared = { checkpointer, holders };
    SHARED.set(path, shared);
  }
  const { checkpointer, holders } = shared;
  const lease: CheckpointerLease = {
    release: async () => {
      if (!holders.delete(lease) || holders.size > 0) return;
      if (SHARED.get(path)?.checkpointer === checkpointer) SHARED.delete(path);
      await checkpointer.stop();
    },
  };
  holders.set(lease, options.onLost);
  return lease;
}

/** How many files have a running checkpointer in this process (for tests). */
export function sharedCheckpointerCount(): number {
  return SHARED.size;
}
