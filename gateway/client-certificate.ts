import type { IncomingMessage } from 'node:http';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { unauthenticated } from '../shared/errors.js';
import type { PresentedCertificate } from '../shared/authority/index.js';

/**
 * What the TLS layer says about the client, as a PresentedCertificate, or a 401 naming why not.
 *
 * The gateway asks for a client certificate but does not make the handshake fail on a bad one
 * (rejectUnauthorized: false): a device with an expired or foreign certificate then gets a JSON
 * answer that says so, instead of a bare handshake alert. The price is that this check must run on
 * every request, which it must anyway because of keep-alive and session resumption.
 */
const TLS_REASONS: Record<string, [code: string, message: string]> = {
  CERT_HAS_EXPIRED: ['certificate_expired', 'the client certificate has expired'],
  CERT_NOT_YET_VALID: ['certificate_not_yet_valid', 'the client certificate is not yet valid'],
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: ['certificate_untrusted', 'the client certificate was not issued by a CA registered with this gateway'],
  UNABLE_TO_GET_ISSUER_CERT: ['certificate_untrusted', 'the client certificate was not issued by a CA registered with this gateway'],
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: ['certificate_untrusted', 'the client certificate was not issued by a CA registered with this gateway'],
  DEPTH_ZERO_SELF_SIGNED_CERT: ['certificate_untrusted', 'the client certificate is self-signed'],
  SELF_SIGNED_CERT_IN_CHAIN: ['certificate_untrusted', 'the client certificate chains to a CA not registered with this gateway'],
  INVALID_CA: ['certificate_untrusted', 'the client certificate chain contains a certificate that is not a CA'],
  INVALID_PURPOSE: ['certificate_purpose_invalid', 'the client certificate is not valid for TLS client authentication (extended key usage clientAuth)'],
  CERT_SIGNATURE_FAILURE: ['certificate_untrusted', 'the client certificate signature does not verify'],
  CERT_REVOKED: ['certificate_revoked', 'the client certificate is revoked'],
};

export function tlsRefusalReason(code: string | undefined): [code: string, message: string] {
  return (code && TLS_REASONS[code]) || ['certificate_rejected', `the client certificate was rejected (${code ?? 'unknown reason'})`];
}

/**
 * The peer certificate as the TLS layer describes it, read once per connection: getPeerCertificate()
 * builds a new object from the X.509 structure on every call, and the limiter, the identification
 * and the log line of every request want it. Renegotiation is turned off on the connection before
 * its certificate is first read, so the certificate cannot change under the cached copy (a client
 * that tries is disconnected). Only the certificate is cached: the device it names is looked up in
 * the store on every request, so a revocation bites at once, on kept-alive and resumed sessions too.
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

/** `cert`: the socket's peer certificate if already read for this request (requestCertificate). */
export function presentedCertificate(socket: TLSSocket, cert: PeerCertificate | null = socket.getPeerCertificate(false)): PresentedCertificate {
  // getPeerCertificate() answers {} (not null) when the client sent none.
  if (!cert || Object.keys(cert).length === 0 || !cert.raw) {
    throw unauthenticated('certificate_required', 'a client certificate is required');
  }
  if (!socket.authorized) {
    const [code, message] = tlsRefusalReason(
      typeof socket.authorizationError === 'string' ? socket.authorizationError : socket.authorizationError?.message,
    );
    throw unauthenticated(code, message);
  }
  const single = (v: string | string[] | undefined) => (typeof v === 'string' ? v : undefined);
  return {
    fingerprint256: cert.fingerprint256.replaceAll(':', '').toLowerCase(),
    commonName: single(cert.subject?.CN),
    organizationalUnit: single(cert.subject?.OU),
    notAfter: Date.parse(cert.valid_to),
    der: cert.raw,
  };
}
