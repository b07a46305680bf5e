import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { SecureContextOptions, TLSSocket } from 'node:tls';
import { verifyDeviceCertificate, type PresentedCertificate, type PresentedClient } from '../shared/authority/index.js';
import type { Store } from '../shared/store/types.js';
import { requestCertificate } from './client-certificate.js';

/**
 * The gateway's TLS side: its own certificate, and a client certificate judged per connection.
 *
 * The TLS layer only asks for a client certificate and checks that the client holds its key (the
 * handshake's CertificateVerify); it is given no CAs. Which certificates are devices' is decided by
 * verifyDeviceCertificate against the store, per factory, so that no factory's CA can stand in for
 * another's and a CA registered or revoked a moment ago counts from the next connection on.
 */
export interface ServerIdentity {
  certPem: string;
  keyPem: string;
  /** The CA bundle devices verify the server certificate with (a registering device's root.crt). */
  caPem?: string;
}

export function secureContextOptions(identity: ServerIdentity): SecureContextOptions {
  return {
    cert: identity.certPem,
    key: identity.keyPem,
    // Resumed sessions carry the peer certificate, which is judged again on the new connection.
    sessionIdContext: 'tollgate-gateway',
    ticketKeys: randomBytes(48),
  };
}

/** A verdict on a connection's certificate, and until when it holds. */
interface Verdict {
  client: PresentedClient;
  recheckAt: number;
}

/** How long a refusal stands for a connection before the certificate is judged again. */
const REFUSAL_RECHECK_MS = 1000;

const verdicts = new WeakMap<TLSSocket, Verdict>();

/**
 * What the client on `req`'s connection presented: a certificate verifyDeviceCertificate trusts, or
 * why not (identifyDevice records and answers the refusal). Judged once per connection (the
 * certificate cannot change on it: renegotiation is refused), again once the verdict's time is up;
 * the device it names is still looked up on every request by identifyDevice.
 */
export async function presentedClient(store: Store, req: IncomingMessage, now: number): Promise<PresentedClient> {
  const peer = requestCertificate(req);
  // getPeerCertificate() answers {} (not null) when the client sent none.
  if (!peer || Object.keys(peer).length === 0 || !peer.raw) return { refusal: 'certificate_required' };
  const socket = req.socket as TLSSocket;
  let verdict = verdicts.get(socket);
  if (!verdict || verdict.recheckAt <= now) {
    verdict = await judge(store, peer.raw, now);
    verdicts.set(socket, verdict);
  }
  return verdict.client;
}

async function judge(store: Store, der: Buffer, now: number): Promise<Verdict> {
  const verdict = await verifyDeviceCertificate(store, der, now);
  if (!('trusted' in verdict)) return { client: verdict, recheckAt: now + REFUSAL_RECHECK_MS };
  const { cert, validUntil } = verdict.trusted;
  const certificate: PresentedCertificate = {
    fingerprint256: cert.fingerprint256,
    commonName: cert.subject.commonName,
    organizationalUnit: cert.subject.organizationalUnit,
    notAfter: cert.notAfter.getTime(),
    der,
  };
  return { client: { certificate }, recheckAt: validUntil };
}

/**
 * The certificate of a request whose device was identified: trusted on this connection, or
 * identification would have refused the request.
 */
export function identifiedCertificate(req: IncomingMessage): PresentedCertificate {
  const client = verdicts.get(req.socket as TLSSocket)?.client;
  if (!client || !('certificate' in client)) throw new Error('the request has no trusted client certificate; identify the device first');
  return client.certificate;
}
