import type { IncomingMessage } from 'node:http';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { PresentedCertificate, PresentedClient, RefusalReason } from '../shared/authority/index.js';

/**
 * What the TLS layer says about the client, as a PresentedClient: its certificate, or the refusal
 * reason (shared/authority/refusals.ts) of why TLS did not accept one.
 *
 * The gateway asks for a client certificate but does not make the handshake fail on a bad one
 * (rejectUnauthorized: false): a device with an expired or foreign certificate then gets a JSON
 * answer that says so, instead of a bare handshake alert. The price is that this check must run on
 * every request, which it must anyway because of keep-alive and session resumption.
 */
const TLS_REASONS: Record<string, { refusal: RefusalReason; detail?: string }> = {
  CERT_HAS_EXPIRED: { refusal: 'certificate_expired' },
  CERT_NOT_YET_VALID: { refusal: 'certificate_not_yet_valid' },
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: { refusal: 'certificate_untrusted' },
  UNABLE_TO_GET_ISSUER_CERT: { refusal: 'certificate_untrusted' },
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: { refusal: 'certificate_untrusted' },
  DEPTH_ZERO_SELF_SIGNED_CERT: { refusal: 'certificate_untrusted', detail: 'it is self-signed' },
  SELF_SIGNED_CERT_IN_CHAIN: { refusal: 'certificate_untrusted', detail: 'its chain ends in an unregistered CA' },
  INVALID_CA: { refusal: 'certificate_untrusted', detail: 'its chain holds a certificate that is not a CA' },
  INVALID_PURPOSE: { refusal: 'certificate_purpose_invalid' },
  CERT_SIGNATURE_FAILURE: { refusal: 'certificate_untrusted', detail: 'its signature does not verify' },
  CERT_REVOKED: { refusal: 'certificate_revoked' },
};

/** The refusal for an OpenSSL verification error code. */
export function tlsRefusal(code: string | undefined): { refusal: RefusalReason; detail?: string } {
  return (code && TLS_REASONS[code]) || { refusal: 'certificate_rejected', detail: code ?? 'unknown reason' };
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
export function presentedCertificate(socket: TLSSocket, cert: PeerCertificate | null = socket.getPeerCertificate(false)): PresentedClient {
  // getPeerCertificate() answers {} (not null) when the client sent none.
  if (!cert || Object.keys(cert).length === 0 || !cert.raw) return { refusal: 'certificate_required' };
  if (!socket.authorized) {
    return tlsRefusal(typeof socket.authorizationError === 'string' ? socket.authorizationError : socket.authorizationError?.message);
  }
  const single = (v: string | string[] | undefined) => (typeof v === 'string' ? v : undefined);
  return {
    certificate: {
      fingerprint256: cert.fingerprint256.replaceAll(':', '').toLowerCase(),
      commonName: single(cert.subject?.CN),
      organizationalUnit: single(cert.subject?.OU),
      notAfter: Date.parse(cert.valid_to),
      der: cert.raw,
    },
  };
}

/**
 * The certificate of a request whose device was identified: TLS accepted it, or identification
 * would have refused the request.
 */
export function identifiedCertificate(req: IncomingMessage): PresentedCertificate {
  const client = presentedCertificate(req.socket as TLSSocket, requestCertificate(req));
  if (!('certificate' in client)) throw new Error('the request has no accepted client certificate; identify the device first');
  return client.certificate;
}
