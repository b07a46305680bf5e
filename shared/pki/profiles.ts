import { isIP } from 'node:net';
import { invalidInput } from '../errors.js';
import { OID } from './oids.js';
import type { KeyDescription } from './keys.js';
import { x509 } from './peculiar.js';

/**
 * What each kind of certificate Tollgate issues may be used for. Key usage is always critical
 * (RFC 5280 recommends it) so that no relying party treats a device key as a CA key.
 */

export type Profile = 'root-ca' | 'device-ca' | 'device-client' | 'tls-server' | 'token-signing' | 'ca-verification';

export const PROFILES: readonly Profile[] = ['root-ca', 'device-ca', 'device-client', 'tls-server', 'token-signing', 'ca-verification'];

export interface ProfileInput {
  profile: Profile;
  subjectKey: KeyDescription;
  /** DER SubjectPublicKeyInfo of the certified key, for the subject key identifier. */
  subjectSpki: Buffer;
  /** Hex key identifier of the issuer; omitted for self-signed certificates. */
  authorityKeyId?: string;
  dnsNames?: string[];
  ipAddresses?: string[];
}

const F = x509.KeyUsageFlags;

/** A DNS name as certificates carry it: LDH labels, optionally a leftmost '*' wildcard label. */
const DNS_NAME = /^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

function subjectAltNames(input: ProfileInput): x509.JsonGeneralNames {
  const dnsNames = input.dnsNames ?? [];
  const ipAddresses = input.ipAddresses ?? [];
  if (input.profile !== 'tls-server') {
    if (dnsNames.length > 0 || ipAddresses.length > 0) {
      throw invalidInput('san_not_allowed', `dnsNames and ipAddresses apply only to tls-server certificates, not ${input.profile}`);
    }
    return [];
  }
  if (dnsNames.length + ipAddresses.length === 0) {
    throw invalidInput('san_required', 'a tls-server certificate needs at least one dnsName or ipAddress: clients match the server name against them');
  }
  for (const name of dnsNames) {
    if (typeof name !== 'string' || name.length > 253 || !DNS_NAME.test(name)) {
      throw invalidInput('san_invalid', `"${String(name)}" is not a valid DNS name (letters, digits and hyphens in dot-separated labels, optional leading "*.")`);
    }
  }
  for (const ip of ipAddresses) {
    if (typeof ip !== 'string' || isIP(ip) === 0) throw invalidInput('san_invalid', `"${String(ip)}" is not an IPv4 or IPv6 address`);
  }
  return [...dnsNames.map((value) => ({ type: 'dns' as const, value: value.toLowerCase() })), ...ipAddresses.map((value) => ({ type: 'ip' as const, value }))];
}

export async function profileExtensions(input: ProfileInput): Promise<x509.Extension[]> {
  const { profile } = input;
  const sans = subjectAltNames(input);
  const extensions: x509.Extension[] = [];

  switch (profile) {
    case 'root-ca':
      extensions.push(new x509.BasicConstraintsExtension(true, undefined, true));
      extensions.push(new x509.KeyUsagesExtension(F.keyCertSign | F.cRLSign | F.digitalSignature, true));
      break;
    case 'device-ca':
      // A device CA signs device certificates only, never further CAs.
      extensions.push(new x509.BasicConstraintsExtension(true, 0, true));
      extensions.push(new x509.KeyUsagesExtension(F.keyCertSign | F.cRLSign | F.digitalSignature, true));
      break;
    case 'device-client':
      extensions.push(new x509.BasicConstraintsExtension(false, undefined, true));
      extensions.push(new x509.KeyUsagesExtension(F.digitalSignature, true));
      extensions.push(new x509.ExtendedKeyUsageExtension([OID.clientAuth]));
      break;
    case 'tls-server':
      extensions.push(new x509.BasicConstraintsExtension(false, undefined, true));
      // RSA key exchange (TLS 1.2 without ECDHE) encrypts to the server key: keyEncipherment.
      extensions.push(new x509.KeyUsagesExtension(input.subjectKey.type === 'rsa' ? F.digitalSignature | F.keyEncipherment : F.digitalSignature, true));
      extensions.push(new x509.ExtendedKeyUsageExtension([OID.serverAuth]));
      extensions.push(new x509.SubjectAlternativeNameExtension(sans));
      break;
    case 'token-signing':
    case 'ca-verification':
      extensions.push(new x509.BasicConstraintsExtension(false, undefined, true));
      extensions.push(new x509.KeyUsagesExtension(F.digitalSignature, true));
      break;
    default:
      throw invalidInput('profile_invalid', `unknown certificate profile "${String(profile)}"; expected one of ${PROFILES.join(', ')}`);
  }

  extensions.push(await x509.SubjectKeyIdentifierExtension.create(input.subjectSpki));
  if (input.authorityKeyId !== undefined) extensions.push(new x509.AuthorityKeyIdentifierExtension(input.authorityKeyId));
  return extensions;
}
