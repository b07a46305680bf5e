import https from 'node:https';
import { gatewayUrl, realmUrl, type Config } from '../../shared/config.js';
import { error, ok, warning, type Finding } from './findings.js';
import { checkSettings } from './settings.js';

/** Clock skew beyond which token `iat`/`nbf`/`exp` checks start to fail somewhere. */
const MAX_SKEW_MS = 30_000;
const TIMEOUT_MS = 5_000;

async function get(url: string): Promise<Response> {
  return fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS), redirect: 'manual' });
}

/** The realm's /readyz: up, and signing with the key the store says is active. */
export async function probeRealm(config: Config, activeKid: string | null): Promise<Finding[]> {
  const url = new URL('/readyz', realmUrl(config)).toString();
  let res: Response;
  try {
    res = await get(url);
  } catch (e) {
    return [error('realm_unreachable', `the realm does not answer at ${url} (${(e as Error).message})`, 'start it (tollgate serve authsvc) or correct authsvc.publicUrl')];
  }
  const body = (await res.json().catch(() => ({}))) as { kid?: string; problem?: string; store?: string };
  if (res.status !== 200) {
    const why = body.problem ?? (body.store !== undefined && body.store !== 'ok' ? `its store: ${body.store}` : `status ${res.status}`);
    return [error('realm_not_ready', `the realm at ${url} is not ready: ${why}`, 'see the authsvc log; tollgate keys list shows the signing keys')];
  }
  if (activeKid !== null && body.kid !== activeKid) {
    return [warning('realm_key_stale', `the realm signs with ${body.kid ?? 'no key'} but the store's active key is ${activeKid}`, 'wait a few seconds for the realm to notice, or restart it')];
  }
  return [ok('realm', `the realm at ${url} is ready and signs with ${body.kid ?? 'its active key'}`)];
}

/** The gateway's /healthz: only whether it answers; the device trust is its own business. */
export function probeGateway(config: Config): Promise<Finding[]> {
  const url = new URL('/healthz', gatewayUrl(config));
  return new Promise((resolve) => {
    // Liveness only, no credential crosses: the development CA may not be at hand here.
    const req = https.get(url, { rejectUnauthorized: false, timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(
        res.statusCode === 200
          ? [ok('gateway', `the gateway answers at ${url.origin}`)]
          : [error('gateway_unhealthy', `the gateway at ${url.origin} answered /healthz with ${res.statusCode}`, 'see the gateway log')],
      );
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolve([error('gateway_unreachable', `the gateway does not answer at ${url.origin} (${e.message})`, 'start it (tollgate serve gateway) or correct gateway.publicUrl')]));
  });
}

/** `Bearer realm="...",service="..."` into its parameters. */
function challengeParams(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of header.matchAll(/([a-zA-Z]+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!.toLowerCase()] = m[2]!.replace(/\\(.)/g, '$1');
  return out;
}

/**
 * The running registry's own word: its /v2/ challenge names the realm and service it was started
 * with (which may differ from the file on disk), and its Date header shows its clock.
 */
export async function probeRegistry(registryUrl: string, config: Config, now: () => number): Promise<Finding[]> {
  const url = new URL('/v2/', registryUrl).toString();
  let res: Response;
  try {
    res = await get(url);
  } catch (e) {
    return [error('registry_unreachable', `the registry does not answer at ${url} (${(e as Error).message})`, 'check --registry-url and that the registry runs')];
  }
  await res.arrayBuffer().catch(() => undefined);
  const findings: Finding[] = [];
  const date = res.headers.get('date');
  if (date) {
    const skew = Date.parse(date) - now();
    if (Math.abs(skew) > MAX_SKEW_MS) {
      findings.push(error('clock_skew', `the registry's clock is ${Math.round(skew / 1000)} s ${skew > 0 ? 'ahead of' : 'behind'} this host's: tokens look not yet valid or already expired to it`, 'synchronise both clocks (NTP)'));
    } else {
      findings.push(ok('clock', `the registry's clock agrees with this host's (${Math.round(skew / 1000)} s)`));
    }
  }
  const challenge = res.headers.get('www-authenticate');
  if (res.status !== 401 || !challenge || !/^bearer\s/i.test(challenge)) {
    findings.push(error('registry_auth_not_token', `the registry at ${url} does not ask for a bearer token (status ${res.status}): it is not configured for token authentication`, 'add the auth.token section Tollgate writes (tollgate registry-config) and restart it'));
    return findings;
  }
  const params = challengeParams(challenge);
  const live = checkSettings({ realm: params.realm, service: params.service, issuer: config.authsvc.issuer }, config, `the running registry at ${registryUrl}`);
  // The challenge carries no issuer: only realm and service can be compared live.
  return [...findings, ...live.filter((f) => !f.id.startsWith('issuer'))];
}
