import type { IncomingMessage } from 'node:http';
import type { PeerCertificate, TLSSocket } from 'node:tls';

/**
 * The peer certificate as the TLS layer describes it, read once per connection: getPeerCertificate()
 * builds a new object from the X.509 structure on every call, and the limiter, the identification
 * and the log line of every request want it. Renegotiation is turned off on the connection before
 * its certificate is first read, so the certificate cannot change under the cached copy (a client
 * that tries is disconnected). Only the certificate is cached: the device it names is looked up in
 * the store on every request, so a revocation bites at once, on kept-alive and resumed sessions too.
 *
 * The gateway asks for a client certificate but gives the TLS layer no CAs to verify it with: a
 * device with an expired or foreign certificate gets a JSON answer that says so, instead of a bare
 * handshake alert, and trust.ts judges the certificate against its own factory's CAs.
 */
const perConnection = new WeakMap<TLSSocket, PeerCertificate>();

export function requestCertificate(req: IncomingMessage): PeerCertificate | null {
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function' || typeof socket.disableRenegotiation !== 'function') return null;
  const tls = socket as TLSSocket;
  let cert = perConnection.get(tls);
  if (cert === undefined) {
    tls.disableRenegotiation();
    cert = tls.getPeerCertificate(false);
    perConnection.set(tls, cert);
  }
  return cert;
}
