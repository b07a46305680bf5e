import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';

/** Size-capped file reading with operator-readable failures. */

export const MAX_FILE_BYTES = 64 * 1024;

/** Why a file could not be read, in words (the caller prefixes which file). */
export class FileReadError extends Error {
  override readonly name = 'FileReadError';
  constructor(
    readonly reason: 'not_found' | 'permission_denied' | 'not_a_file' | 'too_large' | 'unreadable',
    message: string,
  ) {
    super(message);
  }
}

/**
 * Reads a whole text file of at most `maxBytes`. The size is checked on the open descriptor and
 * again while reading, so a file that grows (or a device node) cannot make the helper read without
 * bound.
 */
export async function readCappedFile(file: string, maxBytes = MAX_FILE_BYTES): Promise<string> {
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(file, 'r');
  } catch (e) {
    throw describeOpenError(e, file);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new FileReadError('not_a_file', `not a regular file (${file})`);
    if (stat.size > maxBytes) throw tooLarge(file, stat.size, maxBytes);
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) throw tooLarge(file, length, maxBytes);
    }
    return buffer.subarray(0, length).toString('utf8');
  } catch (e) {
    if (e instanceof FileReadError) throw e;
    throw describeOpenError(e, file);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

function tooLarge(file: string, size: number, maxBytes: number): FileReadError {
  return new FileReadError('too_large', `file is ${size} bytes or more; at most ${maxBytes} bytes (${maxBytes / 1024} KiB) are accepted (${file})`);
}

function describeOpenError(e: unknown, file: string): FileReadError {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new FileReadError('not_found', `file not found (${file})`);
    case 'EACCES':
    case 'EPERM':
      return new FileReadError('permission_denied', `permission denied reading ${file}`);
    case 'EISDIR':
      return new FileReadError('not_a_file', `is a directory, not a file (${file})`);
    default:
      return new FileReadError('unreadable', `cannot read ${file} (${code ?? 'unknown error'})`);
  }
}

/** Writes `content` next to `file` and renames it over `file`: readers see the old or the new file, never a mix. */
export async function replaceFile(file: string, content: string, mode: number): Promise<void> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fsp.writeFile(temp, content, { mode, flag: 'wx' });
  try {
    await fsp.chmod(temp, mode);
    await fsp.rename(temp, file);
  } catch (e) {
    await fsp.rm(temp, { force: true });
    throw e;
  }
}
