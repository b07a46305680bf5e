import type { Acl } from '../acl.js';
import type { AuthnContext, AuthorizationHook } from '../authn/types.js';
import { grant, type AccessEntry } from '../policy.js';
import type { ResourceScope } from '../scope.js';
import type { Identity } from './types.js';

/**
 * Authorization, docker_auth style: each authorizer judges the identities that are its own and
 * grants the intersection of what was asked and what it allows. Two are built in: the token policy
 * for devices and API tokens (policy.ts), and the ACL for accounts, narrowed by the authorization
 * hook when one is configured.
 */
export interface Authorizer {
  /** The access to grant, or null when `identity` is not this authorizer's to judge. */
  authorize(identity: Identity, scopes: readonly ResourceScope[], context: AuthnContext): Promise<AccessEntry[]> | null;
}

/** Devices and API tokens: the token policy (policy.ts). */
export const tokenPolicy: Authorizer = {
  authorize: (identity, scopes) => (identity.kind === 'token' ? Promise.resolve(grant(identity.subject, scopes)) : null),
};

/**
 * An account's access: the ACL's grant, then narrowed by the hook if there is one. The hook sees
 * only what the ACL already allows, one resource at a time, and cannot widen it.
 */
export function accountAcl(acl: Acl, hook?: AuthorizationHook): Authorizer {
  return {
    authorize(identity, scopes, context) {
      if (identity.kind !== 'account') return null;
      const { principal } = identity;
      const access = acl.grant(principal, scopes);
      if (!hook || access.length === 0) return Promise.resolve(access);
      return Promise.all(
        access.map(async (entry) => {
          const question = { account: principal.account, origin: principal.origin, labels: principal.labels, type: entry.type as 'repository' | 'registry', name: entry.name, actions: entry.actions };
          const allowed = new Set(await hook.authorize(question, context));
          return { ...entry, actions: entry.actions.filter((a) => allowed.has(a)) };
        }),
      ).then((narrowed) => narrowed.filter((entry) => entry.actions.length > 0));
    },
  };
}

/** The first authorizer that judges the identity decides; an identity none judges gets nothing. */
export async function authorize(authorizers: readonly Authorizer[], identity: Identity, scopes: readonly ResourceScope[], context: AuthnContext): Promise<AccessEntry[]> {
  for (const authorizer of authorizers) {
    const granted = authorizer.authorize(identity, scopes, context);
    if (granted !== null) return granted;
  }
  return [];
}
