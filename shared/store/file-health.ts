import { statfsSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { TollgateError } from '../errors.js';

/**
 * Whether the database file a store has open is still the one its path names, and whether its
 * disk has room: the two faults an embedded store cannot see through SQLite itself.
 *
 * A store keeps writing into its open file descriptor after the data directory is deleted or
 * replaced; every token minted from then on would be lost at the next start. So the file's device
 * and inode are taken at open and compared (one stat, about a microsecond) before every write and
 * on readiness. Once they differ, or the path is gone, the store stays detached until restarted:
 * it fails closed rather than answer from a file nobody will ever read again.
 *
 * A full disk makes SQLite fail a write with SQLITE_FULL. That is an unavailability, not a bug:
 * callers get a 503 (`store_full`), and readiness reports it until a write succeeds again or the
 * file system has room again.
 */

/** Free space above which a store that met a full disk counts as writable again. */
const WRITABLE_AGAIN_BYTES = 1024 * 1024;
/** What clients are told to wait before retrying on a full disk (Retry-After). */
export const FULL_RETRY_AFTER_SECONDS = 30;

export type StoreFault = 'store_file_missing' | 'store_file_replaced' | 'store_full';

const MESSAGES: Record<StoreFault, (path: string) => string> = {
  store_file_missing: (p) => `the database file ${p} was deleted while in use; restart the service on a restored data directory`,
  store_file_replaced: (p) => `the database file ${p} was replaced while in use; restart the service to open the new one`,
  store_full: (p) => `the disk holding ${p} is full; free space, then retry`,
};

export function storeFault(fault: StoreFault, path: string): TollgateError {
  return new TollgateError('unavailable', fault, MESSAGES[fault](path), fault === 'store_full' ? { retryAfterSeconds: FULL_RETRY_AFTER_SECONDS } : undefined);
}

export function isDiskFull(e: unknown): boolean {
  return (e as { code?: unknown } | null)?.code === 'SQLITE_FULL';
}

export class StoreFileHealth {
  private readonly identity: { dev: number; ino: number } | null;
  private detached: StoreFault | null = null;
  private full = false;

  /** `path` of the open database file, or ':memory:' (nothing to watch). */
  constructor(private readonly path: string) {
    if (path === ':memory:') {
      this.identity = null;
      return;
    }
    const st = statSync(path);
    this.identity = { dev: st.dev, ino: st.ino };
  }

  /** Throws when the open file is no longer at its path (and from then on, whatever the path holds). */
  assertAttached(): void {
    if (this.detached) throw storeFault(this.detached, this.path);
    if (!this.identity) return;
    let fault: StoreFault | null = null;
    try {
      const st = statSync(this.path);
      if (st.dev !== this.identity.dev || st.ino !== this.identity.ino) fault = 'store_file_replaced';
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw e;
      fault = 'store_file_missing';
    }
    if (fault) {
      this.detached = fault;
      throw storeFault(fault, this.path);
    }
  }

  /** Throws only if a check already found the file gone: what reads pay (no system call). */
  assertNotDetached(): void {
    if (this.detached) throw storeFault(this.detached, this.path);
  }

  /** A write failed for lack of space. */
  noteFull(): TollgateError {
    this.full = true;
    return storeFault('store_full', this.path);
  }

  /** A write went through: the disk has room (again). */
  noteWritten(): void {
    this.full = false;
  }

  /** Readiness: every fault, with the disk re-measured if it was full. */
  check(): void {
    this.assertAttached();
    if (this.full && this.identity) {
      try {
        const fs = statfsSync(dirname(this.path));
        if (fs.bavail * fs.bsize >= WRITABLE_AGAIN_BYTES) this.full = false;
      } catch {
        // Cannot tell: keep reporting the last write's verdict.
      }
    }
    if (this.full) throw storeFault('store_full', this.path);
  }
}
