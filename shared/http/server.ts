import { isIP } from 'node:net';
import type { Server } from 'node:http';

/**
 * Limits every Tollgate listener applies, against slow or oversized clients: a request must
 * arrive whole within `requestTimeout`, headers within `headersTimeout`, and header blocks are
 * capped by Node's `maxHeaderSize` (16 KiB by default).
 */
export function hardenServer(server: Server, options: { requestTimeoutMs?: number; keepAliveTimeoutMs?: number } = {}): void {
  server.requestTimeout = options.requestTimeoutMs ?? 15_000;
  server.headersTimeout = Math.min(10_000, server.requestTimeout);
  server.keepAliveTimeout = options.keepAliveTimeoutMs ?? 5_000;
  server.maxRequestsPerSocket = 1000;
  // Node enforces headersTimeout and requestTimeout only when it sweeps its connections, every
  // 30 s by default, so a slow client could hold a socket for up to 40 s instead of 10 s. The
  // sweep interval is read when the server starts listening; it is an option of createServer that
  // the Server type does not declare as a property, hence the widened type.
  (server as Server & { connectionsCheckingInterval: number }).connectionsCheckingInterval = SWEEP_INTERVAL_MS;
}

/** How often timed-out requests are looked for: the timeouts above hold to within this. */
export const SWEEP_INTERVAL_MS = 1_000;

/** Listens and resolves with the bound port (useful with port 0). */
export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/** Stops accepting, lets in-flight requests finish, then closes idle keep-alive sockets. */
export function closeGracefully(server: Server, graceMs = 10_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.closeAllConnections(), graceMs);
    timer.unref();
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}

/** True for names and addresses that only the local host can reach. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./i.test(host);
  return false;
}
