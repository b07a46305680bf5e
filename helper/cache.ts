import crypto from 'node:crypto';
import { promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { noDebug, type Debug } from './debug.js';
import { FileReadError, readCappedFile } from './files.js';

/**
 * The on-disk token cache: one file per (gateway URL, device certificate), so a renewed certificate
 * or a different gateway never reuses a token minted for another identity.
 *
 * Directory: `TOLLGATE_CACHE_DIR`, else `$XDG_CACHE_HOME/tollgate`, else `~/.cache/tollgate`, else
 * (no usable home, as for service accounts) `<os.tmpdir()>/tollgate-cache-<uid>`. The directory is
 * mode 0700 and each file 0600 because the files hold bearer secrets. Files are written to a
 * temporary name and renamed, so a reader sees the old entry or the new one, never half of one.
 *
 * Concurrent helpers (a `compose pull` starts one per image) serialise on `<file>.lock`, a
 * proper-lockfile lock (a directory made atomically, its mtime refreshed while held, so a lock whose
 * holder died goes stale and is taken over): the holder asks the gateway, the others poll the cache
 * file until it appears.
 */

export const CACHE_DIR_ENV = 'TOLLGATE_CACHE_DIR';
/** Tokens are reused until this long before they expire... */
export const MIN_EXPIRY_MARGIN_MS = 60_000;
/** ...or this fraction of their lifetime, whichever is larger, so a pull never starts on a dying token. */
export const EXPIRY_MARGIN_FRACTION = 0.1;
/** A lock not refreshed for this long belongs to a helper that died (the holder refreshes it every 5 s). */
export const STALE_LOCK_MS = 20_000;
const MAX_CACHE_FILE_BYTES = 64 * 1024;

export interface CachedCredentials {
  username: string;
  secret: string;
  /** Epoch milliseconds, by this device's clock. */
  expiresAt: number;
  /** The lifetime the gateway granted, for the proportional expiry margin. */
  lifetimeMs: number;
}

interface CacheEntry extends CachedCredentials, CacheKey {
  version: 1;
  fetchedAt: number;
}

const isText = (v: unknown, minLength = 0): v is string => typeof v === 'string' && v.length >= minLength;
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/**
 * A cache file's content, if it is an entry this helper wrote; checked by hand rather than with a
 * schema library because every warm `get` reads it, and loading one costs more than the rest of the
 * call (bench/, suite device). The file is the helper's own, so the checks are only about types.
 */
function cacheEntry(json: unknown): CacheEntry | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const e = json as Record<string, unknown>;
  const ok =
    e.version === 1 &&
    isText(e.gateway) &&
    isText(e.fingerprint) &&
    isText(e.username, 1) &&
    isText(e.secret, 1) &&
    isNumber(e.expiresAt) &&
    isNumber(e.lifetimeMs) &&
    e.lifetimeMs >= 0 &&
    isNumber(e.fetchedAt);
  return ok ? (e as unknown as CacheEntry) : undefined;
}

/** A cached token as read back: with when it was fetched, by this device's clock. */
export interface CachedEntry extends CachedCredentials {
  fetchedAt: number;
}

/**
 * How long a fetched token is handed out again without asking the gateway: long enough for a burst
 * of pulls (a `compose pull` starts one helper per image), short enough that a device disabled,
 * revoked or enabled again learns it from the gateway within half a minute. A disable or a revoke
 * kills the device's tokens at once; a token held past it would only fail at the realm.
 */
export const REUSE_FOR_MS = 30_000;

/** Whether an entry is far enough from its expiry to be handed out at `now`. */
export function isFresh(entry: CachedCredentials, now: number): boolean {
  const margin = Math.max(MIN_EXPIRY_MARGIN_MS, EXPIRY_MARGIN_FRACTION * entry.lifetimeMs);
  return now < entry.expiresAt - margin;
}

/** Whether an entry may be handed out at `now` without asking the gateway (a clock set back counts as old). */
export function isReusable(entry: CachedEntry, now: number): boolean {
  const age = now - entry.fetchedAt;
  return age >= 0 && age < REUSE_FOR_MS && isFresh(entry, now);
}

function currentUid(): number | undefined {
  return typeof process.getuid === 'function' ? process.getuid() : undefined;
}

function homeDir(env: NodeJS.ProcessEnv): string | undefined {
  if (env.HOME !== undefined) return env.HOME;
  try {
    return os.userInfo().homedir;
  } catch {
    return undefined;
  }
}

interface Candidate {
  dir: string;
  /** Shared parents (the temp dir) need the stricter checks: no symlink, ours, private. */
  shared: boolean;
}

/** Cache directories to try, best first. */
export function cacheDirCandidates(env: NodeJS.ProcessEnv): Candidate[] {
  const candidates: Candidate[] = [];
  const explicit = env[CACHE_DIR_ENV]?.trim();
  if (explicit) {
    candidates.push({ dir: path.resolve(explicit), shared: false });
  } else {
    const xdg = env.XDG_CACHE_HOME?.trim();
    // The XDG spec says relative values are invalid and must be ignored.
    if (xdg && path.isAbsolute(xdg)) candidates.push({ dir: path.join(xdg, 'tollgate'), shared: false });
    const home = homeDir(env)?.trim();
    if (home && path.isAbsolute(home) && home !== '/') candidates.push({ dir: path.join(home, '.cache', 'tollgate'), shared: false });
  }
  // TMPDIR from the given environment first, so callers passing their own environment get its temp dir.
  const tmp = env.TMPDIR?.trim() || os.tmpdir();
  candidates.push({ dir: path.join(path.resolve(tmp), `tollgate-cache-${currentUid() ?? os.userInfo().username}`), shared: true });
  return candidates;
}

/** Creates `dir` if needed and makes sure only this user can use it; returns why not otherwise. */
async function preparePrivateDir({ dir, shared }: Candidate): Promise<string | undefined> {
  try {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const stat = shared ? await fsp.lstat(dir) : await fsp.stat(dir);
    if (!stat.isDirectory()) return 'not a directory';
    const uid = currentUid();
    if (uid !== undefined && stat.uid !== uid) return `owned by uid ${stat.uid}, not by this user (${uid})`;
    if ((stat.mode & 0o077) !== 0) await fsp.chmod(dir, 0o700);
    await fsp.access(dir, fsp.constants.R_OK | fsp.constants.W_OK | fsp.constants.X_OK);
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? String(e);
  }
}

export function cacheFileName(gateway: string, fingerprint: string): string {
  return `${crypto.createHash('sha256').update(`${gateway}\n${fingerprint}`).digest('hex').slice(0, 32)}.json`;
}

export interface CacheKey {
  gateway: string;
  /** SHA-256 of the device certificate. */
  fingerprint: string;
}

/** A gateway refusal, kept briefly so helpers that waited for it report it instead of asking again. */
export interface RecordedFailure {
  code: string;
  message: string;
  status?: number;
  /** Epoch milliseconds (wall clock) when the gateway call failed. */
  at: number;
}

function recordedFailure(json: unknown): RecordedFailure | undefined {
  if (typeof json !== 'object' || json === null) return undefined;
  const f = json as Record<string, unknown>;
  if (!isText(f.code) || !isText(f.message) || !isNumber(f.at) || (f.status !== undefined && !isNumber(f.status))) return undefined;
  return { code: f.code, message: f.message, at: f.at, ...(f.status !== undefined ? { status: f.status } : {}) };
}

/** A held lock; release() removes it only if it is still ours. */
export interface CacheLock {
  release(): Promise<void>;
}

export class CredentialCache {
  readonly lockFile: string;
  readonly failureFile: string;

  constructor(
    readonly file: string,
    private readonly key: CacheKey,
    private readonly debug: Debug = noDebug,
  ) {
    this.lockFile = `${file}.lock`;
    this.failureFile = `${file}.failure`;
  }

  /** The cache for `key` in the first usable directory, or undefined if none is usable. */
  static async open(env: NodeJS.ProcessEnv, key: CacheKey, debug: Debug = noDebug): Promise<CredentialCache | undefined> {
    for (const candidate of cacheDirCandidates(env)) {
      const problem = await preparePrivateDir(candidate);
      if (problem === undefined) {
        const file = path.join(candidate.dir, cacheFileName(key.gateway, key.fingerprint));
        debug(`cache file ${file}`);
        return new CredentialCache(file, key, debug);
      }
      debug(`cache directory ${candidate.dir} not usable (${problem})`);
    }
    debug('no usable cache directory: every call goes to the gateway');
    return undefined;
  }

  /** The stored entry, or undefined when there is none or it is damaged (never an error). */
  async read(): Promise<CachedEntry | undefined> {
    let text: string;
    try {
      text = await readCappedFile(this.file, MAX_CACHE_FILE_BYTES);
    } catch (e) {
      if (!(e instanceof FileReadError) || e.reason !== 'not_found') this.debug(`ignoring unreadable cache file (${(e as Error).message})`);
      return undefined;
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      this.debug(`ignoring corrupted cache file ${this.file} (not JSON)`);
      return undefined;
    }
    const entry = cacheEntry(json);
    if (!entry) {
      this.debug(`ignoring corrupted cache file ${this.file} (unexpected content)`);
      return undefined;
    }
    if (entry.gateway !== this.key.gateway || entry.fingerprint !== this.key.fingerprint) {
      this.debug('ignoring cache file written for another gateway or certificate');
      return undefined;
    }
    return { username: entry.username, secret: entry.secret, expiresAt: entry.expiresAt, lifetimeMs: entry.lifetimeMs, fetchedAt: entry.fetchedAt };
  }

  /** Replaces the entry atomically; failures are reported to debug only, the token is still good. */
  async write(entry: CachedCredentials, now: number): Promise<boolean> {
    return this.atomicWrite(this.file, JSON.stringify({ version: 1, ...this.key, ...entry, fetchedAt: now }));
  }

  private async atomicWrite(file: string, body: string): Promise<boolean> {
    const temp = `${file}.${process.pid}.${crypto.randomBytes(6).toString('hex')}.tmp`;
    try {
      // No fsync: after a crash a torn file is just a corrupted entry, which readers ignore.
      await fsp.writeFile(temp, body, { mode: 0o600, flag: 'wx' });
      await fsp.rename(temp, file);
      return true;
    } catch (e) {
      this.debug(`could not write ${file} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      await fsp.unlink(temp).catch(() => undefined);
      return false;
    }
  }

  /** Records why the last gateway call failed (messages never hold secrets). Best effort. */
  async recordFailure(failure: RecordedFailure): Promise<void> {
    await this.atomicWrite(this.failureFile, JSON.stringify(failure));
  }

  async lastFailure(): Promise<RecordedFailure | undefined> {
    try {
      return recordedFailure(JSON.parse(await readCappedFile(this.failureFile, MAX_CACHE_FILE_BYTES)));
    } catch {
      return undefined;
    }
  }

  async clearFailure(): Promise<void> {
    await fsp.unlink(this.failureFile).catch(() => undefined);
  }

  async remove(): Promise<void> {
    try {
      await fsp.unlink(this.file);
      this.debug(`removed cache file ${this.file}`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  /**
   * Takes the lock if nobody holds it: 'busy' if another helper does. A stale lock (its holder died
   * and stopped refreshing it) is taken over. Errors other than a held lock (read-only file system,
   * ...) are thrown: the caller then works without the cache.
   */
  async tryLock(): Promise<CacheLock | 'busy'> {
    // Loaded here, not with the module: a get answered from the cache never locks.
    const { default: lockfile } = await import('proper-lockfile');
    let release: () => Promise<void>;
    try {
      release = await lockfile.lock(this.file, {
        lockfilePath: this.lockFile,
        realpath: false,
        stale: STALE_LOCK_MS,
        update: STALE_LOCK_MS / 4,
        retries: 0,
        // Losing the lock (its refresh failed, or another helper judged it stale) costs at most one
        // extra gateway call; it must not end this helper.
        onCompromised: (e) => this.debug(`lost the lock ${this.lockFile} (${e.message})`),
      });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ELOCKED') return 'busy';
      // A stale lock file (not directory) left by an older helper: removed, then locked as usual.
      if (code === 'ENOTDIR' && (await this.removeLegacyLock())) return this.tryLock();
      throw e;
    }
    return {
      release: async () => {
        try {
          await release();
        } catch (e) {
          // Taken over by another helper meanwhile: theirs now, not ours to remove.
          this.debug(`could not release lock ${this.lockFile} (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
        }
      },
    };
  }

  private async removeLegacyLock(): Promise<boolean> {
    try {
      await fsp.unlink(this.lockFile);
      this.debug(`removed a stale lock file ${this.lockFile} left by an older helper`);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * True when the lock's holder has evidently died: it stopped refreshing the lock for longer than
   * STALE_LOCK_MS (or the lock is dated in the future after a clock jump). The next tryLock() then
   * takes it over; of several waiters, only one gets it.
   */
  async breakStaleLock(staleMs = STALE_LOCK_MS): Promise<boolean> {
    try {
      const stat = await fsp.stat(this.lockFile);
      return Math.abs(Date.now() - stat.mtimeMs) > staleMs;
    } catch {
      // Gone already: its holder finished; the next tryLock() gets it.
      return true;
    }
  }
}
