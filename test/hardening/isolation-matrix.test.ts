import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basicAuthorization } from '../../authsvc/credentials.js';
import { Keyring } from '../../authsvc/keyring.js';
import { createRealm, realmSettings, type Realm } from '../../authsvc/realm.js';
import { createLogger } from '../../shared/log.js';
import { answer } from '../support/realm.js';
import { createTestAuthority, type Credentials, type TestAuthority } from '../support/store.js';

/**
 * Cross-factory isolation, exhaustively: every kind of subject the realm knows, every registry
 * operation, every kind of repository name that could be mistaken for the subject's own. The
 * expectation is an independent table, not a call into the policy under test.
 */

const SERVICE = 'tollgate-registry';
const OWN = 'acme';
const OTHER = 'beta';

type Operation = 'pull' | 'push' | 'delete' | 'catalog';
type RepoKind = 'own' | 'other' | 'prefix-trick' | 'dash-trick' | 'bare-own' | 'nested-own';
const OPERATIONS: readonly Operation[] = ['pull', 'push', 'delete', 'catalog'];
const REPOS: Readonly<Record<RepoKind, string>> = {
  own: `${OWN}/app`,
  other: `${OTHER}/app`,
  'prefix-trick': `${OWN}x/app`,
  'dash-trick': `${OWN}-evil/app`,
  'bare-own': OWN,
  'nested-own': `${OWN}/team/app`,
};
/** Only these name the subject's own factory namespace. */
const OWNED: ReadonlySet<RepoKind> = new Set(['own', 'nested-own']);

/** Which scope lets an API token do what; a device may pull and nothing else. */
const OPERATION_NEEDS: Readonly<Record<Operation, readonly string[]>> = {
  pull: ['containers:read', 'containers:write'],
  push: ['containers:write'],
  delete: ['containers:delete'],
  catalog: ['catalog:read'],
};
const REGISTRY_SCOPES = ['containers:read', 'containers:write', 'containers:delete', 'catalog:read'] as const;

interface SubjectCase {
  label: string;
  device: boolean;
  scopes: readonly string[];
}

/** Every subset of the registry scopes, plus an administration-only token (no registry rights). */
function subjectCases(): SubjectCase[] {
  const cases: SubjectCase[] = [{ label: 'device token', device: true, scopes: [] }];
  for (let mask = 1; mask < 1 << REGISTRY_SCOPES.length; mask++) {
    const scopes = REGISTRY_SCOPES.filter((_, i) => mask & (1 << i));
    cases.push({ label: `api token [${scopes.join(' ')}]`, device: false, scopes });
  }
  cases.push({ label: 'api token [devices:read devices:write tokens:write]', device: false, scopes: ['devices:read', 'devices:write', 'tokens:write'] });
  return cases;
}

function expectedActions(subject: SubjectCase, operation: Operation, repo: RepoKind): string[] {
  if (operation === 'catalog') return !subject.device && subject.scopes.includes('catalog:read') ? ['*'] : [];
  if (!OWNED.has(repo)) return [];
  if (subject.device) return operation === 'pull' ? ['pull'] : [];
  return OPERATION_NEEDS[operation].some((s) => subject.scopes.includes(s)) ? [operation] : [];
}

let t: TestAuthority;
let keyring: Keyring;
let realm: Realm;
const creds = new Map<string, Credentials>();
const cases = subjectCases();

beforeAll(async () => {
  t = await createTestAuthority();
  const acme = await t.factory(OWN);
  await t.factory(OTHER);
  await t.signingKey();
  keyring = await Keyring.open({ store: t.deps.store, keys: t.deps.keys, pollMs: 0 });
  realm = createRealm({ settings: realmSettings(t.config, 'http://realm.test/token'), deps: t.deps, keyring, log: createLogger('test', 'silent') });
  for (const c of cases) creds.set(c.label, c.device ? await t.deviceToken(await t.device(acme)) : await t.apiToken(acme, [...c.scopes]));
});

afterAll(() => {
  keyring?.close();
  t?.cleanup();
});

async function grantedAccess(subject: SubjectCase, scope: string): Promise<unknown> {
  const c = creds.get(subject.label);
  if (!c) throw new Error(`no credentials for ${subject.label}`);
  const res = await answer(realm, {
    method: 'GET',
    query: new URLSearchParams({ service: SERVICE, scope }),
    authorization: basicAuthorization(c.username, c.secret),
    source: '127.0.0.1',
  });
  // A refusal to grant is an empty access list with 200, never an error status.
  expect(res.status, res.body).toBe(200);
  return decodeJwt((JSON.parse(res.body) as { token: string }).token).access;
}

const scopeFor = (operation: Operation, repo: string) => (operation === 'catalog' ? 'registry:catalog:*' : `repository:${repo}:${operation}`);

describe('cross-factory isolation matrix at the realm', () => {
  it('covers every subject kind, operation and repository kind', () => {
    expect(cases).toHaveLength(1 + 15 + 1);
  });

  for (const subject of cases) {
    it(`grants ${subject.label} exactly what the table says`, async () => {
      const mismatches: string[] = [];
      for (const operation of OPERATIONS) {
        for (const [kind, name] of Object.entries(REPOS) as [RepoKind, string][]) {
          if (operation === 'catalog' && kind !== 'own') continue; // the catalog names no repository
          const want = expectedActions(subject, operation, kind);
          const expected = want.length === 0 ? [] : [{ type: operation === 'catalog' ? 'registry' : 'repository', name: operation === 'catalog' ? 'catalog' : name, actions: want }];
          const got = await grantedAccess(subject, scopeFor(operation, name));
          if (JSON.stringify(got) !== JSON.stringify(expected)) mismatches.push(`${operation} ${name}: got ${JSON.stringify(got)}, want ${JSON.stringify(expected)}`);
        }
      }
      expect(mismatches).toEqual([]);
    });
  }

  it('grants nothing beyond the table when every scope is asked in one request', async () => {
    const all = Object.values(REPOS).map((name) => `repository:${name}:pull,push,delete,*`);
    for (const subject of cases) {
      const got = (await grantedAccess(subject, [...all, 'registry:catalog:*'].join(' '))) as { name: string }[];
      const names = got.map((a) => a.name);
      if (subject.device) expect(names).toEqual([REPOS.own, REPOS['nested-own']]);
      expect(names.every((n) => n === 'catalog' || n.startsWith(`${OWN}/`)), `${subject.label}: ${names.join(',')}`).toBe(true);
    }
  });
});
