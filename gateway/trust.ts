import { createHash, randomBytes } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import type { Store } from '../shared/store/types.js';

/**
 * The gateway's TLS trust: its own certificate, and the device CAs whose clients it verifies.
 * Rebuilt whenever the store's device CA set changes (any process may change it), so a new CA
 * is trusted and a revoked one dropped without a restart.
 */
export interface ServerIdentity {
  certPem: string;
  keyPem: string;
  /** The CA bundle devices verify the server certificate with (a registering device's root.crt). */
  caPem?: string;
}

export async function secureContextOptions(store: Store, identity: ServerIdentity): Promise<SecureContextOptions> {
  const cas = (await store.listDeviceCas()).filter((ca) => ca.state !== 'revoked');
  const pems = cas.map((ca) => ca.certificatePem);
  const trustId = createHash('sha256').update(pems.join('\n')).digest();
  return {
    cert: identity.certPem,
    key: identity.keyPem,
    // Node refuses an empty `ca` list as "no CA": keep the option absent then, and every client
    // certificate fails verification, which is the right answer with no CA registered.
    ...(pems.length > 0 ? { ca: pems } : {}),
    // A session resumed under another trust configuration must not carry its old verdict over:
    // the context id follows the CA set, and ticket keys are new with every context.
    sessionIdContext: trustId.subarray(0, 16).toString('hex'),
    ticketKeys: randomBytes(48),
  };
}

/** Polls the store's device-CA change counter and calls `onChange` when it moves. */
export function watchTrust(
  store: Store,
  /** The version the current context was built from (read before building it). */
  builtFrom: number,
  intervalMs: number,
  onChange: () => Promise<void>,
  onError: (e: unknown) => void,
): () => void {
  let last = builtFrom;
  let running = false;
  const tick = async () => {
    if (running) return;
    running = true;
    try {
      const v = await store.changeVersion('device_cas');
      if (v !== last) {
        await onChange();
        last = v;
      }
    } catch (e) {
      onError(e);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void tick(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
