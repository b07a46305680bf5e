import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/**
 * Gateway ceiling: node:https with the gateway's server certificate, asking for a client
 * certificate like the gateway does (requestCert, no rejection at the TLS layer), answering a
 * constant JSON. What is left between this and the gateway is express, the per-request device
 * identification and the token row + audit row /hub-creds/ writes.
 */
export async function startBareHttps(tls: { certPem: string; keyPem: string; caPem: string }): Promise<{ port: number; close(): Promise<void> }> {
  const body = JSON.stringify({ Username: '00000000-0000-4000-8000-000000000000', Secret: 'tgd_' + 'x'.repeat(49) });
  const server = createServer(
    { cert: tls.certPem, key: tls.keyPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    (_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
      res.end(body);
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
