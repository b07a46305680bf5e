import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { KeyHint } from '../../authsvc/jwt.js';
import type { SigningKeyRecord } from '../../shared/store/types.js';
import { error, ok, warning, type Finding } from './findings.js';
import type { RegistryTokenSection } from './registry-file.js';

/**
 * Whether the registry will trust the tokens the realm signs. What it needs depends on the JWT
 * header the realm writes (`TokenKeyHint`), measured against distribution 2.8.2, 3.0.0 and 3.1.1:
 *
 * - `x5c` (the signing certificate in the header, with `authsvc.tokenKeyHint: x5c`): 2.8 and 3.x alike
 *   verify the chain against `rootcertbundle`. 3.x never consults its JWKS for such a token, so a
 *   JWKS without the active kid changes nothing, and a 3.x configuration with a JWKS but no bundle
 *   refuses every token. Refusal in the log: 2.8.2 `unable to verify certificate chain: x509:
 *   certificate signed by unknown authority`, 3.x `failed to verify token: x509: certificate signed
 *   by unknown authority`.
 * - `kid` only (the default): 2.8 finds the key among the bundle's certificates by libtrust key id; 3.x indexes
 *   bundle keys by RFC 7638 thumbprint instead, so it finds a libtrust kid only through a JWKS entry
 *   with that kid. Refusal in the log: `token signed by untrusted key with ID: "<kid>"`.
 */
export type TokenKeyHint = KeyHint;

const REPUBLISH = 'run `tollgate registry-config --out <dir>` and restart the registry (it reads these files only at start-up)';

function certificatesIn(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const out: X509Certificate[] = [];
  for (const b of blocks) {
    try {
      out.push(new X509Certificate(b));
    } catch {
      // An unreadable block is reported by the count below, not here.
    }
  }
  return out;
}

export function checkSigningKey(keys: readonly SigningKeyRecord[], now: Date): { active: SigningKeyRecord | null; findings: Finding[] } {
  const active = keys.find((k) => k.status === 'active') ?? null;
  if (!active) {
    return {
      active,
      findings: [error('signing_key_missing', 'no token-signing key is active: the realm answers 503', 'run `tollgate keys add --activate`, then publish it with `tollgate registry-config`')],
    };
  }
  const cert = new X509Certificate(active.certificatePem);
  const notBefore = new Date(cert.validFrom);
  const notAfter = new Date(cert.validTo);
  if (notAfter <= now) {
    return { active, findings: [error('signing_cert_expired', `the certificate of the active signing key ${active.kid} expired on ${notAfter.toISOString()}`, `add and activate a new key (tollgate keys add), then ${REPUBLISH}`)] };
  }
  if (notBefore > now) {
    return { active, findings: [error('signing_cert_not_yet_valid', `the certificate of the active signing key ${active.kid} is valid only from ${notBefore.toISOString()}; check this host's clock`, 'set the clock right (NTP), or activate another key')] };
  }
  const days = Math.floor((notAfter.getTime() - now.getTime()) / 86_400_000);
  if (days < 30) {
    return { active, findings: [warning('signing_cert_expiring', `the certificate of the active signing key ${active.kid} expires in ${days} days`, `rotate: tollgate keys add, ${REPUBLISH}, then tollgate keys activate`)] };
  }
  return { active, findings: [ok('signing_key', `active signing key ${active.kid} (${active.alg}), valid until ${notAfter.toISOString()}`)] };
}

const CHAIN_REFUSED =
  'registry 2.8 logs "unable to verify certificate chain: x509: certificate signed by unknown authority", 3.x "failed to verify token: x509: certificate signed by unknown authority"';

export function checkBundle(section: RegistryTokenSection, active: SigningKeyRecord | null, now: Date, hint: TokenKeyHint): Finding[] {
  if (!section.rootcertbundle) {
    if (hint === 'kid' && section.jwks) {
      return [warning('rootcertbundle_missing', 'the registry configuration names no auth.token.rootcertbundle: registry 3.x can still find kid-only tokens through its JWKS, but registry 2.8 does not start without a bundle', `set it to the root-bundle.pem Tollgate writes; ${REPUBLISH}`)];
    }
    const why = section.jwks
      ? `tokens with x5c (authsvc.tokenKeyHint: x5c) are verified by registry 3.x against rootcertbundle only, never against the JWKS: it refuses every token (${CHAIN_REFUSED})`
      : 'registry 2.8 does not start without it, and 3.x has nothing to verify an x5c chain against';
    return [error('rootcertbundle_missing', `the registry configuration names no auth.token.rootcertbundle: ${why}`, `set it to the root-bundle.pem Tollgate writes; ${REPUBLISH}`)];
  }
  let pem: string;
  try {
    pem = readFileSync(section.rootcertbundle, 'utf8');
  } catch (e) {
    return [error('rootcertbundle_unreadable', `cannot read the root bundle ${section.rootcertbundle} (${(e as Error).message}); if the path is inside the registry's container, run doctor where the file is`, REPUBLISH)];
  }
  const certs = certificatesIn(pem);
  if (certs.length === 0) return [error('rootcertbundle_empty', `${section.rootcertbundle} holds no readable certificate`, REPUBLISH)];
  const findings: Finding[] = [];
  for (const c of certs) {
    if (new Date(c.validTo) <= now) {
      findings.push(warning('rootcertbundle_expired_cert', `${section.rootcertbundle} holds a certificate that expired on ${new Date(c.validTo).toISOString()} (${c.subject.replace(/\n/g, ', ')})`, `retire that key (tollgate keys retire), then ${REPUBLISH}`));
    }
  }
  if (active) {
    const fingerprint = new X509Certificate(active.certificatePem).fingerprint256;
    if (certs.some((c) => c.fingerprint256 === fingerprint)) {
      findings.push(ok('active_key_trusted', `the active key ${active.kid} is in ${section.rootcertbundle}`));
    } else {
      const others = `it holds ${certs.length} other certificate${certs.length === 1 ? '' : 's'}`;
      const refusal =
        hint === 'x5c'
          ? `the registry will refuse every token: the realm signs with key ${active.kid}, whose certificate is not in ${section.rootcertbundle} (${others}); ${CHAIN_REFUSED}`
          : `registry 2.8 will refuse every token with "token signed by untrusted key with ID: \"${active.kid}\"": the certificate of the active key is not in ${section.rootcertbundle} (${others})`;
      // With kid-only tokens a 3.x registry may still find the key in its JWKS (checked there).
      findings.push(hint === 'x5c' || !section.jwks ? error('active_key_untrusted', refusal, REPUBLISH) : warning('active_key_untrusted', refusal, REPUBLISH));
    }
  }
  return findings;
}

function jwksKids(file: string): string[] {
  const set = JSON.parse(readFileSync(file, 'utf8')) as { keys?: { kid?: unknown }[] };
  return (set.keys ?? []).map((k) => (typeof k.kid === 'string' ? k.kid : '')).filter((k) => k !== '');
}

/**
 * Registry 3.x: `signingalgorithms` must allow the active key's algorithm. The JWKS matters only
 * for kid-only tokens: its lack of the active kid is a warning then (2.8 still finds the key in the
 * bundle), and with x5c tokens only a note, never a failure.
 */
export function checkJwks(section: RegistryTokenSection, active: SigningKeyRecord | null, hint: TokenKeyHint): Finding[] {
  if (!active) return [];
  const findings: Finding[] = [];
  if (section.signingalgorithms && !section.signingalgorithms.includes(active.alg)) {
    findings.push(
      error(
        'signing_algorithm_refused',
        `the registry accepts ${section.signingalgorithms.join(', ')} only, but the active key ${active.kid} signs with ${active.alg}`,
        `add ${active.alg} to auth.token.signingalgorithms, or ${REPUBLISH}`,
      ),
    );
  }
  if (!section.jwks) {
    // Without a JWKS, kid-only tokens reach registry 2.8 only: key-hint.ts says so.
    return findings;
  }
  let kids: string[];
  try {
    kids = jwksKids(section.jwks);
  } catch (e) {
    const message = `cannot read the JWKS ${section.jwks} as JSON (${(e as Error).message})`;
    // Registry 3.x reads the file at start-up: an unreadable one may stop it, whatever the tokens carry.
    return [...findings, error('jwks_unreadable', message, REPUBLISH)];
  }
  if (kids.includes(active.kid)) {
    findings.push(ok('jwks_kid', `${section.jwks} lists the active kid ${active.kid}`));
  } else if (hint === 'kid') {
    findings.push(
      warning(
        'jwks_kid_missing',
        `${section.jwks} does not list the active kid ${active.kid}: registry 3.x finds a kid-only token's key only there and refuses it with "token signed by untrusted key with ID: \"${active.kid}\"" (registry 2.8 finds it in the bundle)`,
        REPUBLISH,
      ),
    );
  } else {
    findings.push(
      ok(
        'jwks_not_consulted',
        `${section.jwks} does not list the active kid ${active.kid}; that changes nothing while the tokens carry x5c (authsvc.tokenKeyHint: x5c): registry 3.x verifies them against the root bundle and does not consult the JWKS (republish anyway to keep both in step)`,
      ),
    );
  }
  return findings;
}
