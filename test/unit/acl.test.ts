import { describe, expect, it } from 'vitest';
import { Acl } from '../../authsvc/acl.js';
import type { AccountPrincipal } from '../../authsvc/authn/types.js';
import { parseScopeParams } from '../../authsvc/scope.js';
import type { AclRuleConfig } from '../../shared/config-accounts.js';
import { isTollgateError } from '../../shared/errors.js';

const user = (account: string, labels: Record<string, string[]> = {}): AccountPrincipal => ({ origin: 'user', account, labels });
const rule = (match: AclRuleConfig['match'], actions: AclRuleConfig['actions']): AclRuleConfig => ({ match, actions });
const grant = (acl: Acl, who: AccountPrincipal, ...scopes: string[]) => acl.grant(who, parseScopeParams(scopes));

/** The example the README documents: an admin, a read-only user, and users limited to their own prefix. */
const EXAMPLE = new Acl([
  rule({ origin: 'user', account: 'admin' }, ['*']),
  rule({ origin: 'user', account: 'reader', type: 'repository' }, ['pull']),
  rule({ origin: 'user', name: '${account}/**' }, ['pull', 'push']),
]);

describe('ACL (first match wins, intersection of asked and allowed)', () => {
  it('gives the admin every concrete action anywhere, and the catalog', () => {
    expect(grant(EXAMPLE, user('admin'), 'repository:acme/app:pull,push,delete', 'registry:catalog:*')).toEqual([
      { type: 'repository', name: 'acme/app', actions: ['pull', 'push', 'delete'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
    // `*` asked on a repository is expanded, never passed on.
    expect(grant(EXAMPLE, user('admin'), 'repository:acme/app:*')).toEqual([{ type: 'repository', name: 'acme/app', actions: ['pull', 'push', 'delete'] }]);
  });

  it('lets the reader pull anything and nothing more', () => {
    expect(grant(EXAMPLE, user('reader'), 'repository:acme/app:pull,push')).toEqual([{ type: 'repository', name: 'acme/app', actions: ['pull'] }]);
    expect(grant(EXAMPLE, user('reader'), 'repository:acme/app:push')).toEqual([]);
    expect(grant(EXAMPLE, user('reader'), 'registry:catalog:*')).toEqual([]);
  });

  it('limits other users to their own prefix, at any depth', () => {
    expect(grant(EXAMPLE, user('alice'), 'repository:alice/tools:pull,push', 'repository:alice/team/deep/x:push')).toEqual([
      { type: 'repository', name: 'alice/tools', actions: ['pull', 'push'] },
      { type: 'repository', name: 'alice/team/deep/x', actions: ['push'] },
    ]);
    expect(grant(EXAMPLE, user('alice'), 'repository:bob/tools:pull', 'repository:alice:pull', 'repository:alicex/tools:pull')).toEqual([]);
    expect(grant(EXAMPLE, user('alice'), 'repository:alice/tools:delete')).toEqual([]);
  });

  it('distinguishes one path segment (*) from any depth (**)', () => {
    const acl = new Acl([rule({ name: 'acme/*' }, ['pull']), rule({ name: 'team/**' }, ['pull'])]);
    expect(grant(acl, user('u'), 'repository:acme/app:pull')).toHaveLength(1);
    expect(grant(acl, user('u'), 'repository:acme/sub/app:pull')).toEqual([]);
    expect(grant(acl, user('u'), 'repository:team/app:pull', 'repository:team/a/b/c:pull')).toHaveLength(2);
  });

  it('stops at the first matching rule, so an explicit deny shadows later rules', () => {
    const acl = new Acl([rule({ name: 'secret/**' }, []), rule({}, ['pull'])]);
    expect(grant(acl, user('u'), 'repository:secret/x:pull')).toEqual([]);
    expect(grant(acl, user('u'), 'repository:public/x:pull')).toHaveLength(1);
    expect(acl.decide(user('u'), 'repository', 'secret/x')).toEqual({ rule: 0, actions: [] });
    expect(acl.decide(user('u'), 'repository', 'public/x')).toEqual({ rule: 1, actions: ['pull'] });
  });

  it('denies by default: no rule, no access', () => {
    expect(grant(new Acl([]), user('admin'), 'repository:acme/app:pull')).toEqual([]);
    expect(new Acl([rule({ account: 'admin' }, ['*'])]).decide(user('eve'), 'repository', 'acme/app')).toEqual({ rule: null, actions: [] });
  });

  it('matches origins and labels, and expands label placeholders to each value', () => {
    const acl = new Acl([
      rule({ origin: 'oidc', labels: { groups: 'admins' } }, ['*']),
      rule({ origin: 'oidc', name: '${labels:groups}/**' }, ['pull']),
    ]);
    const oidc = (groups: string[]): AccountPrincipal => ({ origin: 'oidc', account: 'dev@example.com', labels: { groups } });
    expect(grant(acl, oidc(['acme', 'globex']), 'repository:globex/app:pull,push')).toEqual([{ type: 'repository', name: 'globex/app', actions: ['pull'] }]);
    expect(grant(acl, oidc(['acme']), 'repository:globex/app:pull')).toEqual([]);
    expect(grant(acl, oidc(['admins']), 'repository:globex/app:push')).toEqual([{ type: 'repository', name: 'globex/app', actions: ['push'] }]);
    // Same account and labels through another authenticator: the origin keeps them apart.
    expect(grant(acl, { ...oidc(['admins']), origin: 'hook' }, 'repository:globex/app:pull')).toEqual([]);
    // A label the account does not have makes the placeholder rule not match.
    expect(grant(acl, { origin: 'oidc', account: 'x', labels: {} }, 'repository:acme/app:pull')).toEqual([]);
  });

  it('matches placeholder values literally, so wildcard characters in them cannot widen a rule', () => {
    const acl = new Acl([rule({ name: '${account}/**' }, ['pull']), rule({ name: '${labels:team}/app' }, ['pull'])]);
    // An account called `*` gets the repositories under `*`... which no valid name has.
    expect(grant(acl, user('*'), 'repository:acme/app:pull')).toEqual([]);
    expect(grant(acl, user('.'), 'repository:a/app:pull')).toEqual([]);
    expect(grant(acl, user('x', { team: ['.*'] }), 'repository:acme/app:pull')).toEqual([]);
    expect(grant(acl, user('x', { team: ['acme'] }), 'repository:acme/app:pull')).toHaveLength(1);
  });

  it('takes /regular expressions/, anchored at both ends', () => {
    const acl = new Acl([rule({ account: '/ci-[0-9]+/', name: '/(acme|globex)\\/.+/' }, ['pull', 'push'])]);
    expect(grant(acl, user('ci-42'), 'repository:globex/app:push')).toHaveLength(1);
    expect(grant(acl, user('ci-42x'), 'repository:globex/app:push')).toEqual([]);
    expect(grant(acl, user('xci-42'), 'repository:acme/app:push')).toEqual([]);
    expect(grant(acl, user('ci-1'), 'repository:other/acme/app:push')).toEqual([]);
  });

  it('never grants names with a host:port prefix', () => {
    expect(grant(EXAMPLE, user('admin'), 'repository:localhost:5000/acme/app:pull')).toEqual([]);
  });

  it('refuses broken patterns and unknown placeholders at construction, naming the rule', () => {
    const error = (rules: AclRuleConfig[]) => {
      try {
        new Acl(rules);
      } catch (e) {
        return isTollgateError(e) ? e.message : String(e);
      }
      return null;
    };
    expect(error([rule({}, ['pull']), rule({ name: '/(unclosed/' }, ['pull'])])).toMatch(/^authsvc\.acl\[1\]\.match\.name: not a valid regular expression/);
    expect(error([rule({ name: '${user}/**' }, ['pull'])])).toMatch(/authsvc\.acl\[0\]\.match\.name: unknown placeholder "\$\{user\}"/);
    expect(error([rule({ labels: { groups: '${labels:}' } }, ['pull'])])).toMatch(/unknown placeholder/);
  });
});

describe('ACL: warnings', () => {
  it('flags a rule that matches an account name without saying which authenticator vouched for it', () => {
    expect(new Acl([rule({ account: 'admin' }, ['*']), rule({ origin: 'user', account: 'reader' }, ['pull'])]).warnings()).toEqual([
      'authsvc.acl[0] matches account "admin" without an origin: an account of that name from any authenticator (static user, OIDC, AWS, hook) matches it',
    ]);
  });
});
