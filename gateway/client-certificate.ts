import type { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { subjectNameOf } from '../shared/pki/index.js';

/**
 * The client certificate of a connection, read once per connection: the limiter, the
 * identification and the log line of every request want it. Renegotiation is turned off on the
 * connection before its certificate is first read, so the certificate cannot change under the
 * cached copy (a client that tries is disconnected). Only the certificate is cached: the device it
 * names is looked up in the store on every request, so a revocation bites at once, on kept-alive
 * and resumed sessions too.
 *
 * It is OpenSSL's own reading from the handshake (getPeerX509Certificate), not getPeerCertificate()'s
 * description, which formats every field of the certificate, nor a second parse of the DER: on a
 * new connection each of those costs about as much as the rest of the certificate's judgement.
 *
 * The gateway asks for a client certificate but gives the TLS layer no CAs to verify it with: a
 * device with an expired or foreign certificate gets a JSON answer that says so, instead of a bare
 * handshake alert, and trust.ts judges the certificate against its own factory's CAs.
 */
export interface ClientCertificate {
  x509: X509Certificate;
  /** SHA-256 of the DER as OpenSSL prints it (colon-separated upper-case hex): the limiter's key and the log lines' field. */
  fingerprint256: string;
  /** The subject's CN, for log lines; null when there is none or the name cannot be read unambiguously (two CNs, say). Read on first use. */
  readonly commonName: string | null;
}

/** null: the client sent no certificate. */
const perConnection = new WeakMap<TLSSocket, ClientCertificate | null>();

export function requestCertificate(req: IncomingMessage): ClientCertificate | null {
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerX509Certificate !== 'function' || typeof socket.disableRenegotiation !== 'function') return null;
  const tls = socket as TLSSocket;
  let cert = perConnection.get(tls);
  if (cert === undefined) {
    tls.disableRenegotiation();
    const x509 = tls.getPeerX509Certificate();
    cert = x509 ? clientCertificate(x509) : null;
    perConnection.set(tls, cert);
  }
  return cert;
}

function clientCertificate(x509: X509Certificate): ClientCertificate {
  let commonName: string | null | undefined;
  return {
    x509,
    fingerprint256: x509.fingerprint256,
    get commonName() {
      if (commonName === undefined) commonName = subjectNameOf(x509.raw)?.commonName ?? null;
      return commonName;
    },
  };
}
