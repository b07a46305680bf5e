import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRegistryLog } from '../../cli/doctor/registry-log.js';

/**
 * The registry's log lines as distribution writes them: 2.8.2's as captured from Debian's
 * docker-registry, 3.x's as its token verifier and access controller word them.
 */
const dir = mkdtempSync(join(tmpdir(), 'tollgate-reglog-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const REQUEST = 'go.version=go1.19.8 http.request.host="127.0.0.1:5000" http.request.method=GET http.request.uri=/v2/demo/app/manifests/latest';
const line = (time: string, level: string, msg: string, extra = '') => `time="${time}" level=${level} msg="${msg.replace(/"/g, '\\"')}"${extra ? ` ${extra}` : ''}`;

function logFile(name: string, lines: string[]): string {
  const file = join(dir, name);
  writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

describe("the doctor's reading of a registry log", () => {
  it('explains 2.8.2 refusing an x5c chain that does not reach its root bundle', () => {
    const file = logFile('28.log', [
      line('2026-11-30T13:54:00Z', 'info', 'listening on 127.0.0.1:5000'),
      line('2026-11-30T13:54:01Z', 'warning', 'error authorizing context: authorization token required', REQUEST),
      line('2026-11-30T13:54:01.98Z', 'info', 'unable to verify certificate chain: x509: certificate signed by unknown authority'),
      line('2026-11-30T13:54:01.99Z', 'warning', 'error authorizing context: invalid token', REQUEST),
      line('2026-11-30T13:55:01.98Z', 'info', 'unable to verify certificate chain: x509: certificate signed by unknown authority'),
      line('2026-11-30T13:55:01.99Z', 'warning', 'error authorizing context: invalid token', REQUEST),
    ]);
    const [finding, ...rest] = checkRegistryLog(file, 'x5c');
    expect(rest).toEqual([]);
    expect(finding).toMatchObject({ id: 'log_chain_untrusted', severity: 'error' });
    expect(finding!.message).toContain('(2 times, last at 2026-11-30T13:55:01.98Z)');
    expect(finding!.message).toContain('never against its JWKS');
  });

  it('explains 3.x refusing the same token, and its other reasons as it words them', () => {
    const file = logFile('3x.log', [
      line('2026-11-30T14:00:00Z', 'info', 'failed to verify token: x509: certificate signed by unknown authority'),
      line('2026-11-30T14:00:00Z', 'warning', 'error authorizing context: invalid token', REQUEST),
      line('2026-11-30T14:00:01Z', 'info', 'failed to verify token: token signing algorithm not allowed'),
      line('2026-11-30T14:00:01Z', 'warning', 'error authorizing context: invalid token', REQUEST),
      line('2026-11-30T14:00:02Z', 'warning', 'error authorizing context: insufficient scope', REQUEST),
    ]);
    const findings = checkRegistryLog(file, 'x5c');
    expect(findings.map((f) => [f.id, f.severity])).toEqual([
      ['log_chain_untrusted', 'error'],
      ['log_token_refused', 'error'],
      ['log_insufficient_scope', 'warning'],
    ]);
    expect(findings[1]!.message).toContain('registry 3.x refused a token: token signing algorithm not allowed');
  });

  it('names issuer, audience, clock and kid refusals', () => {
    const file = logFile('causes.log', [
      line('t1', 'info', 'token from untrusted issuer: "someone-else"'),
      line('t2', 'info', 'token intended for another audience: "other-registry"'),
      line('t3', 'info', 'token not to be used after 2026-11-30 13:00:00 +0000 UTC - currently 2026-11-30 13:54:02 +0000 UTC'),
      line('t4', 'info', 'token not to be used before 2026-11-30 15:00:00 +0000 UTC - currently 2026-11-30 13:54:02 +0000 UTC'),
      line('t5', 'info', 'token signed by untrusted key with ID: "ABCD:EFGH"'),
      ...Array.from({ length: 5 }, () => line('t6', 'warning', 'error authorizing context: invalid token', REQUEST)),
    ]);
    const findings = checkRegistryLog(file, 'kid');
    expect(findings.map((f) => f.id)).toEqual(['log_issuer_mismatch', 'log_audience_mismatch', 'log_token_expired', 'log_token_not_yet_valid', 'log_kid_untrusted']);
    expect(findings[0]!.message).toContain('"someone-else"');
    expect(findings[1]!.fix).toContain('authsvc.service');
    expect(findings[4]!.message).toContain('registry 3.x for a JWKS entry with that kid');
  });

  it('reads JSON logs too, and asks for info level when causes are missing', () => {
    const json = logFile('json.log', [
      JSON.stringify({ level: 'info', msg: 'failed to verify token: x509: certificate signed by unknown authority', time: '2026-11-30T14:00:00Z' }),
      JSON.stringify({ level: 'warning', msg: 'error authorizing context: invalid token', time: '2026-11-30T14:00:00Z' }),
      JSON.stringify({ level: 'warning', msg: 'error authorizing context: invalid token', time: '2026-11-30T14:00:05Z' }),
    ]);
    const findings = checkRegistryLog(json, 'x5c');
    expect(findings.map((f) => f.id)).toEqual(['log_chain_untrusted', 'log_invalid_token']);
    expect(findings[0]!.message).toContain('last at 2026-11-30T14:00:00Z');
    expect(findings[1]!.fix).toContain('log.level to info');
  });

  it('says so when nothing was refused, and when the log cannot be read', () => {
    expect(checkRegistryLog(logFile('quiet.log', [line('t', 'info', 'listening on 127.0.0.1:5000')]), 'x5c')).toEqual([
      expect.objectContaining({ id: 'registry_log', severity: 'ok' }),
    ]);
    expect(checkRegistryLog(join(dir, 'missing.log'), 'x5c')).toEqual([expect.objectContaining({ id: 'registry_log_unreadable', severity: 'error' })]);
  });
});
