import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { error, ok, warning, type Finding } from './findings.js';
import type { TokenKeyHint } from './trust.js';

/**
 * What the registry's own log says about the tokens it refused, explained. The lines are those of
 * distribution 2.8.2 (logrus text, measured here) and 3.x (as its token verifier words them); JSON
 * log output carries the same messages. The registry logs the cause at info level and then, at
 * warning level, `error authorizing context: invalid token` (or `insufficient scope`).
 */

/** Only the end of a big log is read: recent refusals are what matter. */
const TAIL_BYTES = 4 * 1024 * 1024;

const REPUBLISH = 'run `tollgate registry-config --out <dir>` and restart the registry (it reads its bundle and JWKS only at start-up)';

interface Cause {
  id: string;
  pattern: RegExp;
  severity: 'warning' | 'error';
  explain(match: RegExpMatchArray, hint: TokenKeyHint): string;
  fix: string;
}

const CAUSES: readonly Cause[] = [
  {
    // 2.8.2: `unable to verify certificate chain: x509: ...`; 3.x: `failed to verify token: x509: ...`.
    id: 'log_chain_untrusted',
    pattern: /(?:unable to verify certificate chain|failed to verify token): x509: certificate signed by unknown authority/,
    severity: 'error',
    explain: () =>
      "the token's x5c certificate does not chain to the registry's auth.token.rootcertbundle: the signing certificate is missing from the bundle the registry loaded, or (registry 3.x) no rootcertbundle is configured at all; 3.x verifies x5c tokens against the bundle only, never against its JWKS",
    fix: REPUBLISH,
  },
  {
    id: 'log_certificate_dates',
    pattern: /(?:unable to verify certificate chain|failed to verify token): x509: certificate has expired or is not yet valid/,
    severity: 'error',
    explain: () => "the token's signing certificate is outside its dates by the registry's clock",
    fix: 'rotate the signing key (tollgate keys add, registry-config, restart the registry, keys activate) or set the clocks right',
  },
  {
    id: 'log_kid_untrusted',
    pattern: /token signed by untrusted key with ID: "([^"]*)"/,
    severity: 'error',
    explain: (m) =>
      `a token without x5c named key ${m[1]} by its kid and the registry does not know it: registry 2.8 looks for a bundle certificate with that libtrust key id, registry 3.x for a JWKS entry with that kid (3.x keys its bundle by RFC 7638 thumbprint, so a libtrust kid is found only in the JWKS)`,
    fix: `${REPUBLISH}; for registry 3.x set auth.token.jwks (see auth-3.yml)`,
  },
  {
    id: 'log_issuer_mismatch',
    pattern: /token from untrusted issuer: "([^"]*)"/,
    severity: 'error',
    explain: (m) => `the token's issuer "${m[1]}" is not the registry's auth.token.issuer`,
    fix: "make auth.token.issuer and Tollgate's authsvc.issuer the same",
  },
  {
    id: 'log_audience_mismatch',
    pattern: /token intended for another audience: "([^"]*)"/,
    severity: 'error',
    explain: (m) => `the token is for service "${m[1]}", which is not the registry's auth.token.service`,
    fix: "make auth.token.service and Tollgate's authsvc.service the same",
  },
  {
    id: 'log_token_expired',
    pattern: /token not to be used after/,
    severity: 'warning',
    explain: () =>
      "a token had expired by the registry's clock (60 s of leeway included): the registry's clock runs ahead, or a push outlasted the token",
    fix: 'synchronise the clocks (NTP); for long pushes raise authsvc.tokenTtlSeconds',
  },
  {
    id: 'log_token_not_yet_valid',
    pattern: /token not to be used before/,
    severity: 'warning',
    explain: () => "a token was not yet valid by the registry's clock: its clock runs behind Tollgate's by more than a minute",
    fix: 'synchronise the clocks (NTP)',
  },
  {
    id: 'log_signature_invalid',
    pattern: /unable to verify token signature/,
    severity: 'error',
    explain: () => "the token's signature does not verify with the key the registry found for it",
    fix: REPUBLISH,
  },
  {
    // Any other reason registry 3.x gives, as it gives it.
    id: 'log_token_refused',
    pattern: /failed to verify token: ([^"]+)/,
    severity: 'error',
    explain: (m) => `registry 3.x refused a token: ${m[1]}`,
    fix: 'compare the reason with `tollgate doctor` without --registry-log: it checks the bundle, the JWKS and the algorithms',
  },
  {
    id: 'log_insufficient_scope',
    pattern: /error authorizing context: insufficient scope/,
    severity: 'warning',
    explain: () =>
      'a valid token did not grant what the client then did (the realm grants the intersection of what was asked and what is allowed: a device pulls its own factory only, a token what its scopes allow)',
    fix: 'see what was granted in the audit trail (tollgate audit <factory>, tollgate audit-all --action realm.token_issued)',
  },
];

/** The last TAIL_BYTES of the file, from the first whole line. */
function readTail(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(0, size - TAIL_BYTES);
    const buffer = Buffer.alloc(size - start);
    let read = 0;
    while (read < buffer.length) {
      const n = readSync(fd, buffer, read, buffer.length - read, start + read);
      if (n === 0) break;
      read += n;
    }
    const text = buffer.subarray(0, read).toString('utf8');
    return start === 0 ? text : text.slice(text.indexOf('\n') + 1);
  } finally {
    closeSync(fd);
  }
}

/** logrus text escapes quotes inside msg="..."; JSON logs do the same. */
const unescape = (line: string) => line.replace(/\\"/g, '"');
const timeOf = (line: string) => /\btime="?([0-9T:.\-+Z]+)"?/.exec(line)?.[1] ?? /"time":"([^"]+)"/.exec(line)?.[1];

/** The known refusal lines of `file`, one finding per cause with how often and when it was last seen. */
export function checkRegistryLog(file: string, hint: TokenKeyHint): Finding[] {
  let text: string;
  try {
    text = readTail(file);
  } catch (e) {
    return [error('registry_log_unreadable', `cannot read the registry log ${file} (${(e as Error).message})`, 'pass the file the registry writes its log to with --registry-log')];
  }
  const seen = new Map<Cause, { count: number; last: string | undefined; match: RegExpMatchArray }>();
  let unexplained = 0;
  for (const raw of text.split('\n')) {
    if (!raw.includes('token') && !raw.includes('certificate') && !raw.includes('scope')) continue;
    const line = unescape(raw);
    const cause = CAUSES.find((c) => c.pattern.test(line));
    if (!cause) {
      if (/error authorizing context: invalid token/.test(line)) unexplained++;
      continue;
    }
    const prior = seen.get(cause);
    seen.set(cause, { count: (prior?.count ?? 0) + 1, last: timeOf(line) ?? prior?.last, match: line.match(cause.pattern)! });
  }
  const findings: Finding[] = [];
  for (const [cause, { count, last, match }] of seen) {
    const when = `${count} time${count === 1 ? '' : 's'}${last ? `, last at ${last}` : ''}`;
    const message = `the registry log ${file} says "${match[0]}" (${when}): ${cause.explain(match, hint)}`;
    findings.push(cause.severity === 'error' ? error(cause.id, message, cause.fix) : warning(cause.id, message, cause.fix));
  }
  // Each cause line is followed by `invalid token`; more of those than causes means causes at debug level or unknown.
  const explained = [...seen.entries()].filter(([c]) => c.id !== 'log_insufficient_scope').reduce((n, [, s]) => n + s.count, 0);
  if (unexplained > explained) {
    findings.push(
      warning(
        'log_invalid_token',
        `the registry log ${file} has ${unexplained - explained} "error authorizing context: invalid token" line(s) without a cause line before them`,
        'set the registry\'s log.level to info (the cause is logged at info level) and look again',
      ),
    );
  }
  if (findings.length === 0) findings.push(ok('registry_log', `the registry log ${file} shows no refused tokens`));
  return findings;
}
