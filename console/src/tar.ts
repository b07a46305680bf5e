/**
 * A tar archive (POSIX ustar) of a few small text files, so a test device's bundle downloads as one
 * file: `tar xf device-<uuid>.tar` gives the folder `tollgate device issue-test` would write.
 */

const enc = new TextEncoder();

function field(block: Uint8Array, offset: number, length: number, value: string): void {
  block.set(enc.encode(value).slice(0, length), offset);
}

const octal = (n: number, width: number) => `${n.toString(8).padStart(width - 1, '0')}\0`;

export function tar(files: { name: string; content: string; mode: number }[]): Blob {
  const parts: Uint8Array[] = [];
  const mtime = Math.floor(Date.now() / 1000);
  for (const file of files) {
    const body = enc.encode(file.content);
    const header = new Uint8Array(512);
    field(header, 0, 100, file.name);
    field(header, 100, 8, octal(file.mode, 8));
    field(header, 108, 8, octal(0, 8));
    field(header, 116, 8, octal(0, 8));
    field(header, 124, 12, octal(body.length, 12));
    field(header, 136, 12, octal(mtime, 12));
    field(header, 148, 8, '        ');
    field(header, 156, 1, '0');
    field(header, 257, 6, 'ustar\0');
    field(header, 263, 2, '00');
    const sum = header.reduce((a, b) => a + b, 0);
    field(header, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
    parts.push(header, body, new Uint8Array((512 - (body.length % 512)) % 512));
  }
  parts.push(new Uint8Array(1024));
  return new Blob(parts as BlobPart[], { type: 'application/x-tar' });
}
