import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { invalidInput } from '../shared/errors.js';

/** Reading the files a command is given and writing the ones it produces. */

/** Inputs are PEM certificates and CSRs: a few KiB. Anything larger is the wrong file. */
export const MAX_INPUT_BYTES = 64 * 1024;

function describeFsError(e: unknown): string {
  const code = (e as { code?: string }).code;
  switch (code) {
    case 'ENOENT':
      return 'no such file';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'is a directory';
    case 'ENOTDIR':
      return 'a component of the path is not a directory';
    default:
      return code ?? (e as Error).message;
  }
}

/** Reads a text input file, refusing what cannot be one: missing, unreadable, too large, binary. */
export function readInputFile(path: string, what: string): string {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') throw invalidInput('file_not_found', `${what} ${path}: no such file`);
    throw invalidInput('file_unreadable', `${what} ${path}: ${describeFsError(e)}`);
  }
  if (!st.isFile()) throw invalidInput('file_not_regular', `${what} ${path}: not a regular file`);
  const size = st.size;
  if (size > MAX_INPUT_BYTES) throw invalidInput('file_too_large', `${what} ${path}: ${size} bytes; at most ${MAX_INPUT_BYTES} are accepted`);
  // Read at most one byte past the limit: the file may have grown since stat.
  const buffer = Buffer.alloc(MAX_INPUT_BYTES + 1);
  let length = 0;
  try {
    const fd = openSync(path, 'r');
    try {
      for (;;) {
        const n = readSync(fd, buffer, length, buffer.length - length, null);
        if (n === 0) break;
        length += n;
        if (length === buffer.length) break;
      }
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw invalidInput('file_unreadable', `${what} ${path}: ${describeFsError(e)}`);
  }
  if (length > MAX_INPUT_BYTES) throw invalidInput('file_too_large', `${what} ${path}: larger than ${MAX_INPUT_BYTES} bytes`);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, length));
  } catch {
    throw invalidInput('file_not_text', `${what} ${path}: not text; a PEM file is expected (convert DER with openssl x509 -inform der / openssl req -inform der)`);
  }
}

/**
 * Makes `dir` (0700 if new: it may hold a private key) and refuses if any of `names` is already
 * there, before anything is enrolled: files of another device are never overwritten.
 */
export function prepareOutputDir(dir: string, names: readonly string[]): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
  } catch (e) {
    throw invalidInput('output_unwritable', `output directory ${dir}: ${describeFsError(e)}`);
  }
  const present = names.filter((n) => existsSync(join(dir, n)));
  if (present.length > 0) {
    throw invalidInput('output_exists', `output directory ${dir} already holds ${present.join(', ')}; use an empty directory or remove them`);
  }
}

/** Writes a new file with exactly `mode` (whatever the umask); never replaces an existing one. */
export function writeNewFile(path: string, content: string, mode: number): void {
  try {
    writeFileSync(path, content, { mode, flag: 'wx' });
    chmodSync(path, mode);
  } catch (e) {
    throw invalidInput('output_unwritable', `${path}: ${describeFsError(e)}`);
  }
}
