import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeFileAtomic } from '../../shared/files.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'tollgate-files-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('writeFileAtomic', () => {
  it('creates missing folders and gives the file exactly the mode asked, whatever the umask', () => {
    const old = process.umask(0o077);
    try {
      const path = join(dir, 'a', 'b', 'bundle.pem');
      writeFileAtomic(path, 'x', 0o644);
      expect(statSync(path).mode & 0o777).toBe(0o644);
      expect(statSync(join(dir, 'a')).mode & 0o777).toBe(0o700);
    } finally {
      process.umask(old);
    }
  });

  it('replaces an existing file whole and leaves no temp file behind', () => {
    const path = join(dir, 'key');
    writeFileSync(path, 'old');
    writeFileAtomic(path, 'new', 0o600);
    expect(readFileSync(path, 'utf8')).toBe('new');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['key']);
  });

  it('leaves nothing behind when the write cannot complete', () => {
    writeFileSync(join(dir, 'taken'), '');
    // The target's parent is a file: the write fails, and no temp file or partial target remains.
    expect(() => writeFileAtomic(join(dir, 'taken', 'key'), 'x', 0o600)).toThrow();
    expect(readdirSync(dir)).toEqual(['taken']);
  });
});
