/**
 * Who may do what on the registry, for Tollgate's own tokens: a device pulls from its factory, an
 * API token does what its scopes say, in its factory. Deny by default: the grant is the intersection
 * of what was asked and what the subject is allowed, and nothing outside the subject's own factory
 * namespace is ever granted. (Accounts are judged by the ACL instead: acl.ts.)
 */
import { isValidRepositoryName, type ResourceScope } from './scope.js';

export type Subject =
  /** Ephemeral device token: pull only, own factory. */
  | { kind: 'device'; factory: string; device: string }
  /** Factory CI/admin API token, limited by its scopes. */
  | { kind: 'api-token'; factory: string; tokenId: string; scopes: readonly string[] };

/** One element of the JWT `access` claim. */
export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export type RepositoryAction = 'pull' | 'push' | 'delete';

/** Concrete repository actions in output order. `*` is never granted on a repository. */
export const REPOSITORY_ACTIONS: readonly RepositoryAction[] = ['pull', 'push', 'delete'];

/**
 * Adds granted actions on one resource to an access list keyed by `type name`: order follows the
 * request, entries for the same resource are merged into the first, in a fixed action order, and
 * a resource with no action is left out.
 */
export function addAccess(result: Map<string, AccessEntry>, type: string, name: string, actions: readonly string[]): void {
  if (actions.length === 0) return;
  const key = `${type} ${name}`;
  const existing = result.get(key);
  if (existing) {
    const union = new Set([...existing.actions, ...actions]);
    existing.actions = [...REPOSITORY_ACTIONS, '*'].filter((a) => union.has(a));
  } else {
    result.set(key, { type, name, actions: [...actions] });
  }
}

/** API token scope -> repository actions. Scopes not listed give no registry access. */
const TOKEN_SCOPE_ACTIONS: Readonly<Record<string, readonly RepositoryAction[]>> = {
  'containers:read': ['pull'],
  'containers:write': ['pull', 'push'],
  'containers:delete': ['delete'],
};
const CATALOG_TOKEN_SCOPE = 'catalog:read';

// A factory is one path component; anything else cannot be the first component of a repository
// name and could widen the prefix match (e.g. a factory called `acme/app`), so it gets nothing.
const FACTORY = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;

/**
 * The access entries to put in the token. Order follows the request; entries for the same resource
 * are merged into the first; resources with no granted action are left out.
 */
export function grant(subject: Subject, requested: readonly ResourceScope[]): AccessEntry[] {
  if (!FACTORY.test(subject.factory)) return [];
  const allowed = allowedRepositoryActions(subject);
  const catalog = subject.kind === 'api-token' && subject.scopes.includes(CATALOG_TOKEN_SCOPE);

  const result = new Map<string, AccessEntry>();
  for (const scope of requested) {
    let actions: readonly string[];
    if (scope.type === 'repository') {
      if (!ownsRepository(subject.factory, scope.name)) continue;
      // `*` asks for everything the subject may do; expand it to concrete actions so a wildcard
      // is never handed to the registry.
      const all = scope.actions.includes('*');
      actions = REPOSITORY_ACTIONS.filter((a) => allowed.has(a) && (all || scope.actions.includes(a)));
    } else if (scope.type === 'registry') {
      // The catalog has a single action, `*`, and it is all or nothing.
      actions = catalog && scope.name === 'catalog' && scope.actions.includes('*') ? ['*'] : [];
    } else {
      continue; // an unknown type can only come from a caller that skipped parsing
    }
    addAccess(result, scope.type, scope.name, actions);
  }
  return [...result.values()];
}

function allowedRepositoryActions(subject: Subject): ReadonlySet<RepositoryAction> {
  if (subject.kind === 'device') return new Set(['pull']);
  const allowed = new Set<RepositoryAction>();
  for (const scope of subject.scopes) {
    // Own-property lookup only: a scope string like `constructor` must not reach the prototype.
    if (!Object.hasOwn(TOKEN_SCOPE_ACTIONS, scope)) continue;
    for (const action of TOKEN_SCOPE_ACTIONS[scope] ?? []) allowed.add(action);
  }
  return allowed;
}

/**
 * The factory's repositories are exactly `<factory>/<path>` with at least one path component. The
 * trailing slash in the prefix is what keeps `acme` from matching `acmex/app` or `acme-evil/app`;
 * the bare `acme` is not a repository of it. Names with a `host:port` prefix are refused: the
 * registry never stores a local repository under one.
 */
function ownsRepository(factory: string, name: string): boolean {
  if (!isValidRepositoryName(name) || name.includes(':')) return false;
  const prefix = `${factory}/`;
  return name.length > prefix.length && name.startsWith(prefix);
}

