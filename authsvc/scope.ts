/**
 * Parsing of the Docker Registry token-realm `scope` parameter.
 *
 * Grammar (distribution token spec): `type[(class)]:name:action[,action...]`. The name may carry a
 * `host:port/` prefix, so the type ends at the FIRST colon and the actions start after the LAST one.
 *
 * The parser is the first thing hostile input meets, so it is strict and bounded:
 * - an entry that is not understood (unknown type, invalid name, no known action) is dropped, not
 *   fatal: clients legitimately ask for things we do not know, and the grant is deny-by-default
 *   anyway;
 * - only sheer size (too many entries, too many bytes) fails the whole request, with a stable code.
 */
import { invalidInput } from '../shared/errors.js';

export type Action = 'pull' | 'push' | 'delete' | '*';

export interface ResourceScope {
  type: 'repository' | 'registry';
  /** Resource class from `repository(plugin)`; informative only, policy decides on `type`. */
  class?: string;
  name: string;
  /** De-duplicated, in ACTION_ORDER. */
  actions: Action[];
}

/** More entries than any real client sends (docker sends one per repository it touches). */
export const MAX_SCOPE_ENTRIES = 64;
/** Bytes (UTF-8) of all scope values, counted as if joined into one space-separated value. */
export const MAX_SCOPE_BYTES = 8 * 1024;
/** distribution's NameTotalLengthMax: the whole name, host:port prefix included. */
export const MAX_NAME_LENGTH = 255;
/**
 * Longest entry worth looking at: a bounded type, a maximal name and every action, with room to
 * spare. Anything longer cannot be valid, so it is dropped before any regular expression runs.
 */
const MAX_ENTRY_LENGTH = 512;

/** Fixed output order, so equal requests produce byte-identical scopes and tokens. */
export const ACTION_ORDER: readonly Action[] = ['pull', 'push', 'delete', '*'];

/** The only registry-level resource the registry knows, and its only action. */
const CATALOG_NAME = 'catalog';

// distribution reference grammar: path component, lower-case ASCII only. Unambiguous (separators
// and alphanumerics are disjoint), so matching is linear and cannot be used for ReDoS.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
// Host part of a `host:port/` prefix: lower-case DNS labels or dotted IPv4. Upper-case hosts and
// bracketed IPv6 are refused: a name like that never designates a local repository anyway.
const HOST = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
const PORT = /^[0-9]{1,5}$/;
const TYPE = /^([a-z0-9]+)(?:\(([a-z0-9]+)\))?$/;

/**
 * True for a repository name the registry accepts: path components joined by `/`, optionally
 * preceded by one `host:port` component, at most 255 characters. Everything else (upper case,
 * `..`, empty components, leading or trailing slash, percent-encoding, control or non-ASCII
 * characters) is refused.
 */
export function isValidRepositoryName(name: string): boolean {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) return false;
  const parts = name.split('/');
  let start = 0;
  const first = parts[0] ?? '';
  if (first.includes(':')) {
    if (!isHostPort(first) || parts.length < 2) return false;
    start = 1;
  }
  for (let i = start; i < parts.length; i++) {
    if (!PATH_COMPONENT.test(parts[i] ?? '')) return false;
  }
  return true;
}

function isHostPort(component: string): boolean {
  const colon = component.indexOf(':');
  if (colon !== component.lastIndexOf(':')) return false;
  const host = component.slice(0, colon);
  const port = component.slice(colon + 1);
  return HOST.test(host) && PORT.test(port) && Number(port) >= 1 && Number(port) <= 65535;
}

/**
 * Parse one entry. Returns null when the entry is dropped: malformed, unknown type or resource,
 * invalid name, or no known action left. Unknown actions inside an otherwise valid entry are
 * dropped individually.
 */
export function parseScopeEntry(entry: string): ResourceScope | null {
  if (typeof entry !== 'string' || entry.length === 0 || entry.length > MAX_ENTRY_LENGTH) return null;
  const first = entry.indexOf(':');
  const last = entry.lastIndexOf(':');
  if (first <= 0 || last === first) return null;

  const typeMatch = TYPE.exec(entry.slice(0, first));
  if (!typeMatch) return null;
  const [, baseType, resourceClass] = typeMatch;
  const name = entry.slice(first + 1, last);
  const requested = entry.slice(last + 1).split(',');

  let type: ResourceScope['type'];
  let actions: Action[];
  if (baseType === 'repository') {
    if (!isValidRepositoryName(name)) return null;
    type = 'repository';
    actions = normalizeActions(requested);
  } else if (baseType === 'registry') {
    // `registry:catalog:*` is the whole registry-level vocabulary; `*` is its only action.
    if (name !== CATALOG_NAME) return null;
    type = 'registry';
    actions = requested.includes('*') ? ['*'] : [];
  } else {
    return null;
  }
  if (actions.length === 0) return null;

  const scope: ResourceScope = { type, name, actions };
  if (resourceClass !== undefined) scope.class = resourceClass;
  return scope;
}

/** Keep known actions only, de-duplicated, in ACTION_ORDER. */
function normalizeActions(values: Iterable<string>): Action[] {
  const seen = new Set<string>(values);
  return ACTION_ORDER.filter((a) => seen.has(a));
}

/**
 * Parse every `scope` value of a request. GET sends `scope` repeated, POST one value with entries
 * separated by spaces; both may be mixed. Entries for the same (type, name) merge (union of actions,
 * class of the first entry that has one); order follows first appearance.
 *
 * Throws invalidInput('scope_too_large') beyond MAX_SCOPE_ENTRIES entries or MAX_SCOPE_BYTES bytes.
 * Limits are measured on the raw input, before anything is dropped or merged, and the byte count
 * includes one separator between values, so repeated and space-joined spellings of the same request
 * hit the limits at exactly the same point.
 */
export function parseScopeParams(values: readonly string[]): ResourceScope[] {
  let bytes = Math.max(0, values.length - 1);
  for (const value of values) {
    if (typeof value !== 'string') {
      throw invalidInput('scope_invalid', 'scope parameter must be a string');
    }
    // UTF-8 is never shorter than the UTF-16 length: check that first so a huge value is refused
    // without being scanned.
    bytes += value.length;
    if (bytes > MAX_SCOPE_BYTES) throw tooLarge();
    bytes += Buffer.byteLength(value, 'utf8') - value.length;
    if (bytes > MAX_SCOPE_BYTES) throw tooLarge();
  }

  const entries: string[] = [];
  for (const value of values) {
    for (const entry of value.split(' ')) {
      if (entry.length === 0) continue; // repeated, leading or trailing spaces
      entries.push(entry);
      if (entries.length > MAX_SCOPE_ENTRIES) {
        throw invalidInput('scope_too_large', `at most ${MAX_SCOPE_ENTRIES} scope entries are accepted`, {
          maxEntries: MAX_SCOPE_ENTRIES,
        });
      }
    }
  }

  const merged = new Map<string, ResourceScope>();
  for (const entry of entries) {
    const scope = parseScopeEntry(entry);
    if (!scope) continue;
    // Names cannot contain spaces, so this key is unambiguous.
    const key = `${scope.type} ${scope.name}`;
    const existing = merged.get(key);
    if (!existing) {
      merged.set(key, scope);
      continue;
    }
    existing.actions = normalizeActions([...existing.actions, ...scope.actions]);
    if (existing.class === undefined && scope.class !== undefined) existing.class = scope.class;
  }
  return [...merged.values()];
}

function tooLarge() {
  return invalidInput('scope_too_large', `scope parameters exceed ${MAX_SCOPE_BYTES} bytes`, {
    maxBytes: MAX_SCOPE_BYTES,
  });
}

/**
 * Space-separated `type[(class)]:name:a,b`, the form of the `scope` field in the POST response.
 * Entries without actions are left out: they grant nothing and would not parse back.
 */
export function formatScope(scopes: readonly ResourceScope[]): string {
  const parts: string[] = [];
  for (const scope of scopes) {
    const actions = normalizeActions(scope.actions);
    if (actions.length === 0) continue;
    const type = scope.class !== undefined ? `${scope.type}(${scope.class})` : scope.type;
    parts.push(`${type}:${scope.name}:${actions.join(',')}`);
  }
  return parts.join(' ');
}
