import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SigningKeyRecord } from '../../shared/store/types.js';
import { error, ok, warning, type Finding } from './findings.js';
import type { RegistryTokenSection } from './registry-file.js';

/**
 * Whether the registry will trust the tokens the realm signs: the active key's certificate must be
 * in the root bundle (registry 2.8 and 3.x), its kid in the JWKS and its algorithm among the
 * signing algorithms (3.x), and the certificate within its dates. A registry that fails any of these
 * answers every pull with "token signed by untrusted key" or "invalid token"; each finding says which.
 */

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

export function checkBundle(section: RegistryTokenSection, active: SigningKeyRecord | null, now: Date): Finding[] {
  if (!section.rootcertbundle) {
    return [error('rootcertbundle_missing', 'the registry configuration names no auth.token.rootcertbundle', `set it to the root-bundle.pem Tollgate writes; ${REPUBLISH}`)];
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
    if (!certs.some((c) => c.fingerprint256 === fingerprint)) {
      findings.push(
        error(
          'active_key_untrusted',
          `the registry will refuse every token with "token signed by untrusted key": the realm signs with key ${active.kid}, whose certificate is not in ${section.rootcertbundle} (it holds ${certs.length} other certificate${certs.length === 1 ? '' : 's'})`,
          REPUBLISH,
        ),
      );
    } else {
      findings.push(ok('active_key_trusted', `the active key ${active.kid} is in ${section.rootcertbundle}`));
    }
  }
  return findings;
}

/** Registry 3.x: the JWKS must name the active kid; `signingalgorithms` must allow its algorithm. */
export function checkJwks(section: RegistryTokenSection, active: SigningKeyRecord | null): Finding[] {
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
  if (section.jwks) {
    let kids: string[];
    try {
      const set = JSON.parse(readFileSync(section.jwks, 'utf8')) as { keys?: { kid?: unknown }[] };
      kids = (set.keys ?? []).map((k) => (typeof k.kid === 'string' ? k.kid : '')).filter((k) => k !== '');
    } catch (e) {
      return [...findings, error('jwks_unreadable', `cannot read the JWKS ${section.jwks} as JSON (${(e as Error).message})`, REPUBLISH)];
    }
    if (!kids.includes(active.kid)) {
      findings.push(error('jwks_kid_missing', `the registry looks token kids up in ${section.jwks}, which does not list the active kid ${active.kid}`, REPUBLISH));
    } else {
      findings.push(ok('jwks_kid', `${section.jwks} lists the active kid ${active.kid}`));
    }
  }
  return findings;
}
