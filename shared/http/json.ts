import type { ServerResponse } from 'node:http';

/**
 * A JSON answer written with node:http alone, byte for byte what express's `res.json` writes
 * (Content-Type with charset, Content-Length, no ETag), for a hot route served in front of an
 * express app: its clients cannot tell the two apart.
 */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)) });
  // Node leaves the body out of an answer to HEAD by itself.
  res.end(text);
}
