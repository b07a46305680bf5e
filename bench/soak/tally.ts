/**
 * The soak's tally: what was asked and what went wrong, by kind of request, the samples taken, and
 * the verdict and report made of them.
 */

// ---- counters -------------------------------------------------------------------------------

export type Kind = 'hubCredsNew' | 'hubCredsKeepAlive' | 'realmGet' | 'realmRefresh' | 'adminList' | 'adminEnroll' | 'adminRevoke' | 'revokedRefused';
export const KINDS: Kind[] = ['hubCredsNew', 'hubCredsKeepAlive', 'realmGet', 'realmRefresh', 'adminList', 'adminEnroll', 'adminRevoke', 'revokedRefused'];

export const requests = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
export const errors = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;
// The first few unexpected answers, enough to tell what went wrong without flooding the report.
export const firstErrors: string[] = [];

export function count(kind: Kind, ok: boolean, what: string): void {
  requests[kind]++;
  if (ok) return;
  errors[kind]++;
  if (firstErrors.length < 20) firstErrors.push(`${kind}: ${what}`);
}

export const sum = (r: Record<Kind, number>) => KINDS.reduce((a, k) => a + r[k], 0);

export interface Sample {
  t: number;
  gatewayRssMiB: number | null;
  authsvcRssMiB: number | null;
  gatewayFds: number | null;
  authsvcFds: number | null;
  requests: number;
  errors: number;
  byKind: Record<Kind, number>;
}

export interface Check {
  name: string;
  value: string;
  reference: string;
  rule: string;
  met: boolean;
}

// ---- verdict and report ---------------------------------------------------------------------

export function judge(seconds: number, samples: Sample[]): { checks: Check[]; met: boolean } {
  // The warm-up ends at 20% of the run: JIT, SQLite's page cache and connection pools have settled.
  const warm = samples.find((s) => s.t >= seconds * 0.2) ?? samples[0];
  const end = samples[samples.length - 1];
  if (!warm || !end) throw new Error('no samples');
  const checks: Check[] = [];
  const unexpected = sum(errors);
  checks.push({ name: 'unexpected answers and network errors', value: String(unexpected), reference: `${sum(requests)} requests`, rule: '= 0', met: unexpected === 0 });
  for (const name of ['gateway', 'authsvc'] as const) {
    const w = name === 'gateway' ? warm.gatewayRssMiB : warm.authsvcRssMiB;
    const e = name === 'gateway' ? end.gatewayRssMiB : end.authsvcRssMiB;
    // Within 15%, or within 15 MiB: a small process may move by a few MiB of allocator slack.
    const met = w !== null && e !== null && (e <= w * 1.15 || e - w <= 15);
    checks.push({ name: `${name} RSS, end vs warm-up`, value: `${e ?? 'gone'} MiB`, reference: `${w ?? 'gone'} MiB (t=${warm.t}s)`, rule: '<= 1.15x or +15 MiB', met });
  }
  for (const name of ['gateway', 'authsvc'] as const) {
    const w = name === 'gateway' ? warm.gatewayFds : warm.authsvcFds;
    const e = name === 'gateway' ? end.gatewayFds : end.authsvcFds;
    const met = w !== null && e !== null && e <= w + 10;
    checks.push({ name: `${name} open fds, end vs warm-up`, value: String(e ?? 'gone'), reference: `${w ?? 'gone'} (t=${warm.t}s)`, rule: '<= warm-up + 10', met });
  }
  return { checks, met: checks.every((c) => c.met) };
}

export function table(checks: Check[]): string {
  return [
    '| check | end | warm-up / reference | rule | met |',
    '| --- | --- | --- | --- | --- |',
    ...checks.map((c) => `| ${c.name} | ${c.value} | ${c.reference} | ${c.rule} | ${c.met ? 'yes' : 'no'} |`),
  ].join('\n');
}

export function markdown(date: string, seconds: number, checks: Check[], met: boolean, samples: Sample[]): string {
  return [
    `# Soak, ${seconds} s (${date})`,
    '',
    `Verdict: **${met ? 'passed' : 'failed'}**`,
    '',
    table(checks),
    '',
    '## Samples',
    '',
    '| t (s) | gateway RSS (MiB) | authsvc RSS (MiB) | gateway fds | authsvc fds | requests | unexpected |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...samples.map((s) => `| ${s.t} | ${s.gatewayRssMiB ?? '-'} | ${s.authsvcRssMiB ?? '-'} | ${s.gatewayFds ?? '-'} | ${s.authsvcFds ?? '-'} | ${s.requests} | ${s.errors} |`),
    '',
    `Requests by kind: ${KINDS.map((k) => `${k} ${requests[k]} (${errors[k]} unexpected)`).join(', ')}.`,
    '',
  ].join('\n');
}

