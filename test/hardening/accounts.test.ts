import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import argon2 from 'argon2';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { Acl } from '../../authsvc/acl.js';
import { hashPassword } from '../../authsvc/authn/static-users.js';
import type { AccountPrincipal } from '../../authsvc/authn/types.js';
import { basicAuthorization } from '../../authsvc/credentials.js';
import { startAuthsvc, type RunningAuthsvc } from '../../authsvc/server.js';
import { aclSchema, type AclRuleConfig } from '../../shared/config-accounts.js';
import { createLogger } from '../../shared/log.js';
import { parseScopeParams } from '../../authsvc/scope.js';
import { createTestAuthority, type TestAuthority } from '../support/store.js';
import { CLI, ROOT } from '../support/topology.js';

/**
 * Accounts as an attacker probes them: telling known user names from unknown ones by the answer or
 * by its time, with and without an authentication hook; refusals that lose the name presented; an
 * identity from another authenticator that happens to carry a static user's name; a configuration
 * that silently drops a user.
 */

const SERVICE = 'tollgate-registry';

/** `argon2id v=19 m=19456,t=2,p=1` or `bcrypt 10`: what one verification costs. */
const costOf = (hash: string) => (hash.startsWith('$argon2') ? hash.split('$').slice(1, 4).join(' ') : `bcrypt ${hash.slice(4, 6)}`);

/** The hash computations `run` makes, observed on the hash libraries themselves. */
async function hashesVerified(run: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const a = vi.spyOn(argon2, 'verify').mockImplementation(async (digest: string) => {
    seen.push(costOf(digest));
    return false;
  });
  const b = vi.spyOn(bcrypt, 'compare').mockImplementation((async (_password: string, hash: string) => {
    seen.push(costOf(hash));
    return false;
  }) as typeof bcrypt.compare);
  try {
    await run();
  } finally {
    a.mockRestore();
    b.mockRestore();
  }
  return seen;
}

function hookScript(dir: string): string {
  const path = join(dir, 'authn-hook.cjs');
  // The site's directory knows henry; it takes long for "slowpoke"; everyone else is not its business.
  writeFileSync(
    path,
    `#!${process.execPath}
let input = '';
process.stdin.on('data', (d) => (input += d));
process.stdin.on('end', () => {
  const { username, password } = JSON.parse(input);
  if (username === 'slowpoke') return setTimeout(() => process.exit(2), 10_000);
  if (username === 'henry' && password === 'henry-pass') process.exit(0);
  process.exit(2);
});
`,
  );
  chmodSync(path, 0o755);
  return path;
}

describe('accounts: what a name probe learns', () => {
  let t: TestAuthority;
  let withHook: RunningAuthsvc;
  let withoutHook: RunningAuthsvc;
  const users: Record<string, { password: string }> = {};

  beforeAll(async () => {
    users.alice = { password: await hashPassword('alice-pass', 'argon2id') };
    users.bob = { password: await hashPassword('bob-pass', 'bcrypt') };
    t = await createTestAuthority({ config: { limits: { enabled: false } } });
    await t.signingKey();
    const acl = [{ match: { origin: 'user', name: '${account}/**' }, actions: ['pull'] }, { match: { origin: 'hook', name: '${account}/**' }, actions: ['pull'] }];
    const log = createLogger('authsvc', 'silent');
    const authsvc = (hooks: Record<string, unknown>) =>
      startAuthsvc({
        config: { ...t.config, authsvc: { ...t.config.authsvc, users: { ...users } as never, acl: acl as never, hooks: hooks as never } },
        deps: t.deps,
        log,
      });
    withHook = await authsvc({ authentication: { command: [hookScript(t.dir)], timeoutMs: 500, maxConcurrent: 4 } });
    withoutHook = await authsvc({});
  });

  afterAll(async () => {
    await withHook?.close();
    await withoutHook?.close();
    t?.cleanup();
  });

  const ask = async (svc: RunningAuthsvc, username: string, password: string) => {
    const res = await fetch(`${svc.realmUrl}?service=${SERVICE}&scope=${encodeURIComponent(`repository:${username}/app:pull`)}`, {
      headers: { authorization: basicAuthorization(username, password) },
    });
    return { status: res.status, challenge: res.headers.get('www-authenticate'), body: await res.text() };
  };
  const lastRefusal = async () => (await t.deps.store.listAudit({ action: 'realm.refused', limit: 1000 })).at(-1);

  it('runs the same hash computations for an unknown name as for each known name, argon2id and bcrypt users mixed', async () => {
    for (const svc of [withHook, withoutHook]) {
      const unknown = await hashesVerified(() => ask(svc, 'mallory', 'guess'));
      expect(unknown.sort()).toEqual(['argon2id v=19 m=19456,t=2,p=1', 'bcrypt 10']);
      expect(await hashesVerified(() => ask(svc, 'alice', 'guess'))).toEqual(await hashesVerified(() => ask(svc, 'mallory', 'guess')));
      expect(await hashesVerified(() => ask(svc, 'bob', 'guess'))).toEqual(await hashesVerified(() => ask(svc, 'mallory', 'guess')));
    }
  });

  it('answers a known name with a wrong password exactly as an unknown name, with or without a hook', async () => {
    for (const svc of [withHook, withoutHook]) {
      const unknown = await ask(svc, 'mallory', 'guess');
      expect(unknown.status).toBe(401);
      expect(await ask(svc, 'alice', 'guess')).toEqual(unknown);
      expect(await ask(svc, 'bob', 'guess')).toEqual(unknown);
    }
    // The hook is still asked about names it knows, and still accepts them.
    expect((await ask(withHook, 'henry', 'henry-pass')).status).toBe(200);
    expect((await ask(withHook, 'alice', 'alice-pass')).status).toBe(200);
  });

  it('records the name presented when the hook cannot decide or nobody knows it', async () => {
    const slow = await ask(withHook, 'slowpoke', 'guess');
    expect(slow.status).toBe(503);
    expect(await lastRefusal()).toMatchObject({ actor: 'hook:slowpoke', reason: 'hook_timeout' });
    await ask(withHook, 'mallory', 'guess');
    expect(await lastRefusal()).toMatchObject({ actor: 'account:mallory', reason: 'credentials_unknown' });
  });
});

/** Every YAML example in the README and docs/accounts.md that has an `acl:` section. */
function documentedAcls(): { where: string; rules: AclRuleConfig[] }[] {
  const out: { where: string; rules: AclRuleConfig[] }[] = [];
  for (const file of ['README.md', 'docs/accounts.md']) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const [i, block] of [...text.matchAll(/```yaml\n([\s\S]*?)```/g)].entries()) {
      const parsed = parseYaml(block[1]!) as { authsvc?: { acl?: unknown } } | null;
      if (parsed?.authsvc?.acl === undefined) continue;
      out.push({ where: `${file} example ${i + 1}`, rules: aclSchema.parse(parsed.authsvc.acl) });
    }
  }
  return out;
}

describe('accounts: the documented ACL examples', () => {
  const examples = documentedAcls();

  it('exist in the README and in docs/accounts.md', () => {
    expect(new Set(examples.map((e) => e.where.split(' ')[0]))).toEqual(new Set(['README.md', 'docs/accounts.md']));
  });

  it('give an OIDC identity or a hook user called "admin" none of the static admin\'s rights', () => {
    for (const { where, rules } of examples) {
      const acl = new Acl(rules);
      expect(acl.warnings(), where).toEqual([]);
      for (const origin of ['oidc', 'hook', 'aws'] as const) {
        const impostor: AccountPrincipal = { origin, account: 'admin', labels: { email: ['admin'] } };
        const granted = acl.grant(impostor, parseScopeParams(['repository:acme/app:push,delete', 'registry:catalog:*']));
        expect(granted, `${where}: ${origin}:admin`).toEqual([]);
      }
    }
  });
});

describe('accounts: a configuration cannot lose a user without a word', () => {
  it('refuses a user named __proto__ in `tollgate config check` with the schema\'s message', async () => {
    const t = await createTestAuthority();
    try {
      const file = join(t.dir, 'proto.yml');
      writeFileSync(file, stringifyYaml({ authsvc: {} }).replace('authsvc: {}', `authsvc:\n  users:\n    __proto__: { password: "${await hashPassword('p', 'bcrypt')}" }`));
      const r = spawnSync(process.execPath, [CLI, 'config', 'check', '--config', file], { encoding: 'utf8' });
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('authsvc.users.__proto__: user names are 1-128 letters, digits and "._@+-"');
    } finally {
      t.cleanup();
    }
  });
});
