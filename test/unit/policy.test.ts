import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { grant, type AccessEntry, type Subject } from '../../authsvc/policy.js';
import { parseScopeParams, type Action, type ResourceScope } from '../../authsvc/scope.js';

const device: Subject = { kind: 'device', factory: 'acme', device: 'dev-1' };
const token = (...scopes: string[]): Subject => ({ kind: 'api-token', factory: 'acme', tokenId: 'tok-1', scopes });
const ciRead = token('containers:read');
const ciWrite = token('containers:write');
const ciDelete = token('containers:delete');
const catalogOnly = token('catalog:read');
const admin = token('containers:write', 'containers:delete', 'catalog:read');
const devicesOnly = token('devices:read', 'devices:write', 'tokens:admin');

const access = (name: string, ...actions: string[]): AccessEntry => ({ type: 'repository', name, actions });
const catalogAccess: AccessEntry = { type: 'registry', name: 'catalog', actions: ['*'] };

describe('grant table', () => {
  const cases: Array<[string, Subject, string, AccessEntry[]]> = [
    // device: pull only, own factory
    ['device pulls own repo', device, 'repository:acme/app:pull', [access('acme/app', 'pull')]],
    ['device pulls nested repo', device, 'repository:acme/team/sub/app:pull', [access('acme/team/sub/app', 'pull')]],
    ['device push refused', device, 'repository:acme/app:push', []],
    ['device delete refused', device, 'repository:acme/app:delete', []],
    ['device pull,push -> pull', device, 'repository:acme/app:pull,push', [access('acme/app', 'pull')]],
    ['device * -> pull', device, 'repository:acme/app:*', [access('acme/app', 'pull')]],
    ['device other factory refused', device, 'repository:other/app:pull', []],
    ['device catalog refused', device, 'registry:catalog:*', []],
    // prefix tricks
    ['bare factory name is not a repo', device, 'repository:acme:pull', []],
    ['acmex/app is not acme', device, 'repository:acmex/app:pull', []],
    ['acme-evil/app is not acme', device, 'repository:acme-evil/app:pull', []],
    ['acme.evil/app is not acme', device, 'repository:acme.evil/app:pull', []],
    ['acme_x/app is not acme', admin, 'repository:acme_x/app:*', []],
    ['factory later in the path does not count', admin, 'repository:other/acme/app:*', []],
    // host:port names parse but are never granted
    ['host:port prefix refused', admin, 'repository:127.0.0.1:5000/acme/app:pull', []],
    ['localhost:port prefix refused', device, 'repository:localhost:5000/acme/app:pull', []],
    // API tokens
    ['containers:read pull', ciRead, 'repository:acme/app:pull,push,delete', [access('acme/app', 'pull')]],
    ['containers:read *', ciRead, 'repository:acme/app:*', [access('acme/app', 'pull')]],
    ['containers:write push', ciWrite, 'repository:acme/app:pull,push', [access('acme/app', 'pull', 'push')]],
    ['containers:write * (no delete)', ciWrite, 'repository:acme/app:*', [access('acme/app', 'pull', 'push')]],
    ['containers:write delete refused', ciWrite, 'repository:acme/app:delete', []],
    ['containers:delete delete only', ciDelete, 'repository:acme/app:pull,delete', [access('acme/app', 'delete')]],
    ['containers:delete *', ciDelete, 'repository:acme/app:*', [access('acme/app', 'delete')]],
    ['admin * expands, never *', admin, 'repository:acme/app:*', [access('acme/app', 'pull', 'push', 'delete')]],
    ['admin * plus explicit', admin, 'repository:acme/app:pull,*', [access('acme/app', 'pull', 'push', 'delete')]],
    ['admin other factory refused', admin, 'repository:other/app:*', []],
    ['catalog:read catalog', catalogOnly, 'registry:catalog:*', [catalogAccess]],
    ['catalog:read gives no repo access', catalogOnly, 'repository:acme/app:pull', []],
    ['containers scopes give no catalog', ciWrite, 'registry:catalog:*', []],
    ['device scopes give nothing', devicesOnly, 'repository:acme/app:* registry:catalog:*', []],
    ['empty request', admin, '', []],
    [
      'order follows the request, refused entries omitted',
      admin,
      'repository:acme/b:push registry:catalog:* repository:other/x:pull repository:acme/a:pull',
      [access('acme/b', 'push'), catalogAccess, access('acme/a', 'pull')],
    ],
  ];

  it.each(cases)('%s', (_label, subject, scope, expected) => {
    expect(grant(subject, parseScopeParams([scope]))).toEqual(expected);
  });

  it('refuses what parsing would have dropped when given directly', () => {
    const raw = (name: string, actions: string[], type = 'repository') =>
      ({ type, name, actions }) as unknown as ResourceScope;
    expect(
      grant(admin, [
        raw('acme/../other', ['pull']),
        raw('acme/App', ['pull']),
        raw('acme/', ['pull']),
        raw('acme/app', ['fly', 'PULL']),
        raw('acme/app', ['pull'], 'image'),
        raw('config', ['*'], 'registry'),
        raw('catalog', ['pull'], 'registry'),
      ]),
    ).toEqual([]);
  });

  it('merges entries for the same resource given unmerged', () => {
    const r = (actions: Action[]): ResourceScope => ({ type: 'repository', name: 'acme/app', actions });
    expect(grant(admin, [r(['delete']), r(['pull'])])).toEqual([access('acme/app', 'pull', 'delete')]);
  });

  it('grants nothing to a subject whose factory is not a single name component', () => {
    for (const factory of ['', 'Acme', 'acme/app', 'acme/', '127.0.0.1:5000', 'acme ']) {
      const subject: Subject = { kind: 'api-token', factory, tokenId: 't', scopes: ['containers:write', 'catalog:read'] };
      expect(grant(subject, parseScopeParams([`repository:${factory}/x:pull repository:acme/app/x:pull registry:catalog:*`]))).toEqual([]);
    }
  });

  it('ignores token scopes that collide with object prototype names', () => {
    const subject = token('constructor', '__proto__', 'toString', 'hasOwnProperty');
    expect(grant(subject, parseScopeParams(['repository:acme/app:*']))).toEqual([]);
  });
});

// ---- property: the grant is exactly the intersection of request and rules ----------------------

// The rules, restated independently of the implementation.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const CONCRETE = ['pull', 'push', 'delete'] as const;

function ruleAllows(subject: Subject, type: string, name: string, action: string): boolean {
  if (!COMPONENT.test(subject.factory)) return false;
  if (type === 'registry') {
    return (
      name === 'catalog' && action === '*' && subject.kind === 'api-token' && subject.scopes.includes('catalog:read')
    );
  }
  if (type !== 'repository') return false;
  const parts = name.split('/');
  const owned = name.length <= 255 && parts.length >= 2 && parts[0] === subject.factory && parts.every((p) => COMPONENT.test(p));
  if (!owned) return false;
  if (subject.kind === 'device') return action === 'pull';
  const s = subject.scopes;
  switch (action) {
    case 'pull':
      return s.includes('containers:read') || s.includes('containers:write');
    case 'push':
      return s.includes('containers:write');
    case 'delete':
      return s.includes('containers:delete');
    default:
      return false;
  }
}

function expectedGrant(subject: Subject, requested: readonly ResourceScope[]): AccessEntry[] {
  const out = new Map<string, AccessEntry>();
  for (const r of requested) {
    const candidates = r.type === 'registry' ? ['*'] : CONCRETE;
    const granted = candidates.filter(
      (a) => (r.actions.includes(a as Action) || r.actions.includes('*')) && ruleAllows(subject, r.type, r.name, a),
    );
    if (granted.length === 0) continue;
    const key = `${r.type} ${r.name}`;
    const prev = out.get(key);
    const merged = new Set([...(prev?.actions ?? []), ...granted]);
    const entry = { type: r.type, name: r.name, actions: [...CONCRETE, '*'].filter((a) => merged.has(a)) };
    out.set(key, prev ? Object.assign(prev, entry) : entry);
  }
  return [...out.values()];
}

const factories = ['acme', 'acmex', 'acme-evil', 'other', 'a', 'Acme', 'acme/app', ''];
const tokenScopes = ['containers:read', 'containers:write', 'containers:delete', 'catalog:read', 'devices:read', 'devices:write', 'constructor'];
const subjectArb: fc.Arbitrary<Subject> = fc.oneof(
  fc.record({ kind: fc.constant('device' as const), factory: fc.constantFrom(...factories), device: fc.string() }),
  fc.record({
    kind: fc.constant('api-token' as const),
    factory: fc.constantFrom(...factories),
    tokenId: fc.string(),
    scopes: fc.subarray(tokenScopes),
  }),
);
const nameArb = fc.oneof(
  fc.constantFrom(
    'acme',
    'acme/app',
    'acme/a/b/c',
    'acmex/app',
    'acme-evil/app',
    'other/app',
    'a/b',
    'catalog',
    '127.0.0.1:5000/acme/app',
    'localhost:5000/acme/app',
    'acme/App',
    'acme/../x',
    'acme/',
    '/acme/app',
  ),
  fc.tuple(fc.constantFrom(...factories), fc.constantFrom('x', 'y/z', 'x.y', '', 'X')).map(([f, p]) => `${f}/${p}`),
);
const actionsArb = fc.subarray(['pull', 'push', 'delete', '*', 'fly'] as Action[]);
const scopeArb = fc.record({
  type: fc.constantFrom('repository', 'registry', 'image') as fc.Arbitrary<ResourceScope['type']>,
  name: nameArb,
  actions: actionsArb,
});

describe('grant property', () => {
  it('is exactly the intersection of what was asked and what the rules allow', () => {
    fc.assert(
      fc.property(subjectArb, fc.array(scopeArb, { maxLength: 8 }), (subject, requested) => {
        const result = grant(subject, requested);
        expect(result).toEqual(expectedGrant(subject, requested));
        for (const entry of result) {
          expect(entry.actions.length).toBeGreaterThan(0);
          if (entry.type === 'repository') expect(entry.actions).not.toContain('*');
          // (a) requested
          const asked = requested.filter((r) => r.type === entry.type && r.name === entry.name);
          expect(asked.length).toBeGreaterThan(0);
          for (const a of entry.actions) {
            expect(asked.some((r) => r.actions.includes(a as Action) || r.actions.includes('*'))).toBe(true);
            // (b) allowed
            expect(ruleAllows(subject, entry.type, entry.name, a)).toBe(true);
          }
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees with the rules on parsed requests too', () => {
    const entry = fc
      .tuple(fc.constantFrom('repository', 'registry', 'repository(plugin)'), nameArb, fc.subarray(['pull', 'push', 'delete', '*', 'x']))
      .map(([t, n, a]) => `${t}:${n}:${a.join(',')}`);
    fc.assert(
      fc.property(subjectArb, fc.array(entry, { maxLength: 8 }), (subject, entries) => {
        const requested = parseScopeParams([entries.join(' ')]);
        expect(grant(subject, requested)).toEqual(expectedGrant(subject, requested));
      }),
      { numRuns: 1000 },
    );
  });
});
