import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';

/**
 * Gateway ceiling: node:https with the gateway's server certificate, asking for a client
 * certificate and verifying its chain against the device CA like the gateway does (requestCert,
 * the device CA as trust, no rejection at the TLS layer), reading the peer certificate once per
 * connection, refusing an unverified one per request, and otherwise answering a constant JSON
 * naming the certificate's CN. What is left between this and the gateway is the per-request
 * device identification against the store, the token and audit rows /hub-creds/ writes, and the
 * routing and logging around them.
 */
export async function startBareHttps(tls: { certPem: string; keyPem: string }, deviceCaPem: string): Promise<{ port: number; close(): Promise<void> }> {
  const secret = 'tgd_' + 'x'.repeat(49);
  const peers = new WeakMap<TLSSocket, PeerCertificate>();
  const server = createServer(
    { cert: tls.certPem, key: tls.keyPem, ca: [deviceCaPem], requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' },
    (req, res) => {
      const socket = req.socket as TLSSocket;
      let peer = peers.get(socket);
      if (peer === undefined) {
        peer = socket.getPeerCertificate(false);
        peers.set(socket, peer);
      }
      const cn = peer.subject?.CN;
      if (!socket.authorized || typeof cn !== 'string') {
        res.writeHead(401, { 'Content-Type': 'application/json', 'Content-Length': 2 });
        res.end('{}');
        return;
      }
      const body = JSON.stringify({ Username: cn, Secret: secret, ExpiresIn: 3600 });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(body) });
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
