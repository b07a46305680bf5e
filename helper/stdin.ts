import type { Readable } from 'node:stream';

/**
 * Reads a stream to its end, but stops once it has more than `maxBytes`: the caller then sees an
 * oversized text and refuses it, without having buffered an unbounded amount.
 */
export async function readLimited(stream: Readable, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    chunks.push(buffer);
    size += buffer.length;
    if (size > maxBytes) {
      // Leaving the loop destroys the stream; the writer gets EPIPE, which is its problem.
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}
