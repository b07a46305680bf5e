import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../shared/config.js';
import { openAuthority } from '../../shared/runtime.js';
import { SqliteStore } from '../../shared/store/index.js';
import { BackgroundCheckpointer, shareCheckpointer, sharedCheckpointerCount } from '../../shared/store/sqlite-checkpointer.js';
import { waitUntil } from '../support/wait.js';

/** What only the embedded engine has: a file of its own. The shared contract is test/conformance/. */

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-sqlite-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('SqliteStore file', () => {
  it('creates the file with mode 0600 in a 0700 directory, in WAL mode, with foreign keys on', async () => {
    const path = join(dir, 'data', 'tollgate.db');
    const store = new SqliteStore(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'data')).mode & 0o777).toBe(0o700);
    const raw = new Database(path, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();
    expect(store.integrityCheck()).toBe('ok');
    await expect(store.insertDevice({
      uuid: 'd', factoryId: 'no-such-factory', caId: 'no-such-ca', name: null, state: 'active', stateReason: null, isTest: false,
      certificatePem: 'c', certificateFingerprint: 'f', publicKeyFingerprint: 'p', notAfter: 1, createdAt: 1, updatedAt: 1,
    }, { actor: 'operator', action: 'test', outcome: 'success' })).rejects.toThrow(/FOREIGN KEY/);
    await store.close();
  });

  it('commits with synchronous=NORMAL by default and FULL when configured, as the process opening it is configured', async () => {
    const path = join(dir, 'tollgate.db');
    const normal = new SqliteStore(path);
    expect(normal.synchronous()).toBe('NORMAL');
    const full = new SqliteStore(path, { synchronous: 'FULL' });
    expect(full.synchronous()).toBe('FULL');
    await normal.close();
    await full.close();
    const deps = openAuthority(loadConfig({ env: { TOLLGATE_STORE_SQLITE_SYNCHRONOUS: 'FULL' }, cwd: dir }));
    expect(deps.store).toBeInstanceOf(SqliteStore);
    expect((deps.store as SqliteStore).synchronous()).toBe('FULL');
    await deps.store.close();
  });

  it('checkpoints the WAL in the background for a service, without waiting for 1000 pages, and stops with the store', async () => {
    const path = join(dir, 'tollgate.db');
    const store = new SqliteStore(path, { backgroundCheckpoints: true });
    const before = statSync(path).size;
    // A few dozen commits: far below the 1000 pages at which a commit would checkpoint itself.
    for (let i = 0; i < 40; i++) await store.appendAudit({ actor: 'operator', action: 'test.write', outcome: 'success', details: { i, pad: 'x'.repeat(2000) } });
    await waitUntil(() => statSync(path).size > before);
    // The pages reached the database file while the store was open: the worker copied them.
    expect(statSync(path).size).toBeGreaterThan(before);
    await store.close();
    const raw = new Database(path, { readonly: true });
    expect((raw.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'test.write'").get() as { n: number }).n).toBe(40);
    raw.close();
  });

  it('leaves the WAL where it is without background checkpoints, until 1000 pages', async () => {
    const path = join(dir, 'tollgate.db');
    const store = new SqliteStore(path);
    const before = statSync(path).size;
    for (let i = 0; i < 40; i++) await store.appendAudit({ actor: 'operator', action: 'test.write', outcome: 'success', details: { i, pad: 'x'.repeat(2000) } });
    await new Promise((r) => setTimeout(r, 500));
    expect(statSync(path).size).toBe(before);
    await store.close();
  });

  it('hands checkpointing back when its worker is lost', async () => {
    let lost = false;
    const checkpointer = new BackgroundCheckpointer(join(dir, 'no-such-dir', 'tollgate.db'), { onLost: () => (lost = true) });
    await waitUntil(() => lost);
    expect(lost).toBe(true);
    await checkpointer.stop();
  });

  it("never creates a database where the store's file was deleted", async () => {
    const path = join(dir, 'deleted.db');
    let lost = false;
    const checkpointer = new BackgroundCheckpointer(path, { onLost: () => (lost = true) });
    await waitUntil(() => lost);
    expect(lost).toBe(true);
    await checkpointer.stop();
    expect(existsSync(path)).toBe(false);
  });

  it('runs one checkpointer per file for every store of the process on it, until the last one closes', async () => {
    const path = join(dir, 'tollgate.db');
    const before = sharedCheckpointerCount();
    // As `tollgate up` opens it (one store per service, each with background checkpoints), and one more.
    const stores = [0, 1, 2].map(() => new SqliteStore(path, { backgroundCheckpoints: true }));
    await waitUntil(() => sharedCheckpointerCount() !== before);
    await new Promise((r) => setTimeout(r, 300));
    expect(sharedCheckpointerCount()).toBe(before + 1);
    await stores[0]!.close();
    await stores[1]!.close();
    // The remaining store's commits still reach the file without waiting for 1000 pages.
    const size = statSync(path).size;
    for (let i = 0; i < 40; i++) await stores[2]!.appendAudit({ actor: 'operator', action: 'test.write', outcome: 'success', details: { i, pad: 'x'.repeat(2000) } });
    await waitUntil(() => statSync(path).size > size);
    expect(statSync(path).size).toBeGreaterThan(size);
    expect(sharedCheckpointerCount()).toBe(before + 1);
    await stores[2]!.close();
    expect(sharedCheckpointerCount()).toBe(before);

    // A service restarted in the same process (the store opened again) gets a worker again.
    const reopened = new SqliteStore(path, { backgroundCheckpoints: true });
    await waitUntil(() => sharedCheckpointerCount() !== before);
    expect(sharedCheckpointerCount()).toBe(before + 1);
    const sizeAfterRestart = statSync(path).size;
    for (let i = 0; i < 40; i++) await reopened.appendAudit({ actor: 'operator', action: 'test.write', outcome: 'success', details: { i, pad: 'y'.repeat(2000) } });
    await waitUntil(() => statSync(path).size > sizeAfterRestart);
    expect(statSync(path).size).toBeGreaterThan(sizeAfterRestart);
    await reopened.close();
    expect(sharedCheckpointerCount()).toBe(before);
  });

  it('tells every holder of a shared checkpointer that it was lost, and starts a new one for the next', async () => {
    const path = join(dir, 'lost.db'); // no such file: the worker cannot open it and ends
    const lost = [false, false];
    const a = shareCheckpointer(path, { onLost: () => (lost[0] = true) });
    const b = shareCheckpointer(path, { onLost: () => (lost[1] = true) });
    await waitUntil(() => lost[0] === true && lost[1] === true);
    expect(lost).toEqual([true, true]);
    let lostAgain = false;
    const c = shareCheckpointer(path, { onLost: () => (lostAgain = true) });
    await waitUntil(() => lostAgain);
    expect(lostAgain).toBe(true);
    await Promise.all([a.release(), b.release(), c.release()]);
  });
});
