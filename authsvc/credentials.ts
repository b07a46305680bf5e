/**
 * HTTP Basic credentials (RFC 7617), read strictly.
 *
 * The realm is the first thing an attacker's bytes meet, so anything that is not exactly
 * `Basic <canonical base64 of "user:password">` is refused with a reason a client developer can
 * act on. Every refusal is a value, never an exception: the realm audits it and answers 401.
 */

export interface BasicCredentials {
  username: string;
  password: string;
}

/** Stable reasons, recorded in the audit trail and returned to the client. */
export type CredentialsRefusalReason =
  | 'credentials_missing'
  | 'auth_scheme_unsupported'
  | 'credentials_too_large'
  | 'credentials_not_base64'
  | 'credentials_not_utf8'
  | 'credentials_malformed'
  | 'username_empty'
  | 'password_empty';

export type ParsedCredentials =
  | { ok: true; credentials: BasicCredentials }
  | { ok: false; reason: CredentialsRefusalReason; message: string };

/**
 * Longest Authorization value accepted. Device and API credentials are about 130 characters
 * encoded, but account credentials are bigger: an OIDC ID token with a few groups is 1-2 KiB and an
 * AWS instance identity document with its PKCS#7 signature about 2 KiB, base64 again in the header.
 * 8 KiB leaves room for those while staying within Node's 16 KiB header limit.
 */
export const MAX_AUTHORIZATION_LENGTH = 8 * 1024;

const SCHEME = 'basic';
// Canonical padded base64 (RFC 4648 section 4): whole quanta, '=' only at the end.
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// RFC 7617 section 2: user-id and password exclude control characters.
const CONTROL = /[\u0000-\u001f\u007f]/;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function refuse(reason: CredentialsRefusalReason, message: string): ParsedCredentials {
  return { ok: false, reason, message };
}

/** Reads the Authorization header value(s) of a request as Basic credentials. */
export function parseBasicAuthorization(header: string | readonly string[] | undefined): ParsedCredentials {
  if (header === undefined) return refuse('credentials_missing', 'HTTP Basic credentials are required');
  if (typeof header !== 'string') {
    if (header.length === 0) return refuse('credentials_missing', 'HTTP Basic credentials are required');
    if (header.length > 1) return refuse('credentials_malformed', 'more than one Authorization header was sent');
    return parseBasicAuthorization(header[0]);
  }
  if (header.length === 0) return refuse('credentials_missing', 'HTTP Basic credentials are required');
  if (header.length > MAX_AUTHORIZATION_LENGTH) {
    return refuse('credentials_too_large', `the Authorization header is longer than ${MAX_AUTHORIZATION_LENGTH} characters`);
  }

  // RFC 7235 section 2.1: the scheme is case-insensitive and separated from its token68 by spaces.
  const space = header.indexOf(' ');
  const scheme = space < 0 ? header : header.slice(0, space);
  if (scheme.toLowerCase() !== SCHEME) {
    return refuse('auth_scheme_unsupported', 'only the HTTP Basic authentication scheme is accepted here');
  }
  const encoded = space < 0 ? '' : header.slice(space + 1).replace(/^ +/, '');
  if (encoded.length === 0) return refuse('credentials_malformed', 'the Basic credentials are empty');
  if (encoded.length % 4 !== 0 || !BASE64.test(encoded)) {
    return refuse('credentials_not_base64', 'the Basic credentials are not canonical base64');
  }
  const bytes = Buffer.from(encoded, 'base64');
  // Non-zero padding bits decode to the same bytes as the canonical form; insisting on the
  // canonical spelling keeps one credential to one encoding.
  if (bytes.toString('base64') !== encoded) {
    return refuse('credentials_not_base64', 'the Basic credentials are not canonical base64');
  }

  let decoded: string;
  try {
    decoded = utf8.decode(bytes);
  } catch {
    return refuse('credentials_not_utf8', 'the Basic credentials are not valid UTF-8');
  }
  const colon = decoded.indexOf(':');
  if (colon < 0) return refuse('credentials_malformed', 'the Basic credentials must be "username:password"; no colon was found');
  // RFC 7617 section 2: the user-id ends at the first colon; the password may contain colons.
  if (CONTROL.test(decoded)) return refuse('credentials_malformed', 'the Basic credentials contain control characters');
  const username = decoded.slice(0, colon);
  const password = decoded.slice(colon + 1);
  if (username.length === 0) return refuse('username_empty', 'the Basic username is empty');
  if (password.length === 0) return refuse('password_empty', 'the Basic password is empty');
  return { ok: true, credentials: { username, password } };
}

/** The header value a client sends for `username:password`; for tests and tools. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}
