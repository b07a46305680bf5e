/**
 * Access control for accounts (people and machines that are not enrolled devices), in the
 * docker_auth model: an ordered list of rules, the first rule whose `match` fits the account and
 * the resource decides, and the grant is the intersection of what was asked and what that rule
 * allows. No matching rule, no access.
 *
 * Patterns (account, name, label values) are globs unless written between slashes:
 * - `*` matches within one path segment (never a `/`), `**` matches across any number of them,
 *   `?` matches one character other than `/`; everything else is literal;
 * - `/.../` is a regular expression, anchored at both ends.
 * So `acme/*` matches `acme/app` but not `acme/team/app`; `acme/**` matches both.
 *
 * `account` alone does not say which authenticator vouched for the name (a static user `admin` and
 * an OIDC identity whose email is `admin` are both account `admin`): rules naming an account should
 * pin `origin` too; warnings() lists those that do not.
 *
 * Placeholders `${account}` and `${labels:<name>}` are replaced before matching; their values are
 * always matched literally (a `*` in an account name is a `*`, not a wildcard). A label with
 * several values makes the pattern match if any value does; a label the account lacks makes the
 * rule not match.
 */
import { invalidInput } from '../shared/errors.js';
import type { AclRuleConfig } from '../shared/config-accounts.js';
import type { AccountPrincipal } from './authn/types.js';
import { addAccess, REPOSITORY_ACTIONS, type AccessEntry } from './policy.js';
import type { ResourceScope } from './scope.js';

/** Expansions of one pattern past which the rule is treated as not matching (label fan-out bound). */
const MAX_EXPANSIONS = 256;
/** Compiled patterns kept; they vary with the account, so the cache is bounded. */
const CACHE_LIMIT = 4096;

const PLACEHOLDER = /\$\{(account|labels:[A-Za-z][A-Za-z0-9_.-]{0,63})\}/g;

interface Pattern {
  source: string;
  regex: boolean;
}

interface CompiledRule {
  index: number;
  comment: string | undefined;
  account: Pattern | undefined;
  origin: AccountPrincipal['origin'] | undefined;
  type: 'repository' | 'registry' | undefined;
  name: Pattern | undefined;
  labels: [string, Pattern][];
  actions: ReadonlySet<string>;
}

/** The rule that decided, for the audit trail. */
export interface AclDecision {
  rule: number | null;
  actions: string[];
}

export class Acl {
  private readonly rules: CompiledRule[];
  private readonly cache = new Map<string, RegExp>();

  constructor(rules: readonly AclRuleConfig[]) {
    this.rules = rules.map((rule, index) => {
      const where = `authsvc.acl[${index}]`;
      const pattern = (p: string | undefined, key: string) => (p === undefined ? undefined : checkPattern(p, `${where}.match.${key}`));
      return {
        index,
        comment: rule.comment,
        account: pattern(rule.match.account, 'account'),
        origin: rule.match.origin,
        type: rule.match.type,
        name: pattern(rule.match.name, 'name'),
        labels: Object.entries(rule.match.labels ?? {}).map(([label, p]) => [label, checkPattern(p, `${where}.match.labels.${label}`)]),
        actions: new Set(rule.actions),
      };
    });
  }

  get size(): number {
    return this.rules.length;
  }

  /**
   * Rules that are valid but probably not what was meant. An account name alone does not say who
   * vouched for it: a static user, an OIDC email, an AWS instance or a hook's user may all be
   * called `admin`, so a rule naming an account should pin its origin.
   */
  warnings(): string[] {
    return this.rules
      .filter((r) => r.account !== undefined && r.origin === undefined)
      .map(
        (r) =>
          `authsvc.acl[${r.index}] matches account "${r.account!.regex ? `/${r.account!.source}/` : r.account!.source}" without an origin: an account of that name from any authenticator (static user, OIDC, AWS, hook) matches it`,
      );
  }

  /** The actions the first matching rule allows on one resource, before intersecting with the request. */
  decide(principal: AccountPrincipal, type: 'repository' | 'registry', name: string): AclDecision {
    for (const rule of this.rules) {
      if (rule.origin !== undefined && rule.origin !== principal.origin) continue;
      if (rule.type !== undefined && rule.type !== type) continue;
      if (rule.account !== undefined && !this.matches(rule.account, principal.account, principal)) continue;
      if (rule.name !== undefined && !this.matches(rule.name, name, principal)) continue;
      let labelsMatch = true;
      for (const [label, pattern] of rule.labels) {
        const values = principal.labels[label] ?? [];
        if (!values.some((v) => this.matches(pattern, v, principal))) {
          labelsMatch = false;
          break;
        }
      }
      if (!labelsMatch) continue;
      return { rule: rule.index, actions: [...rule.actions] };
    }
    return { rule: null, actions: [] };
  }

  /**
   * The access entries for an account: per requested resource, what was asked intersected with
   * what the deciding rule allows. `*` is expanded to concrete repository actions (never handed
   * to the registry on a repository); the catalog's single action `*` is all or nothing.
   */
  grant(principal: AccountPrincipal, requested: readonly ResourceScope[]): AccessEntry[] {
    const result = new Map<string, AccessEntry>();
    for (const scope of requested) {
      const decision = this.decide(principal, scope.type, scope.name);
      const allowed = new Set(decision.actions);
      let actions: string[];
      if (scope.type === 'repository') {
        // Local repositories never carry a host:port prefix; such a name is asked for elsewhere.
        if (scope.name.includes(':')) continue;
        const all = scope.actions.includes('*');
        actions = REPOSITORY_ACTIONS.filter((a) => (allowed.has(a) || allowed.has('*')) && (all || scope.actions.includes(a)));
      } else {
        actions = scope.name === 'catalog' && scope.actions.includes('*') && allowed.has('*') ? ['*'] : [];
      }
      addAccess(result, scope.type, scope.name, actions);
    }
    return [...result.values()];
  }

  private matches(pattern: Pattern, value: string, principal: AccountPrincipal): boolean {
    const expansions = expand(pattern, principal);
    if (expansions === null) return false;
    return expansions.some((source) => this.compiled(source).test(value));
  }

  private compiled(source: string): RegExp {
    let re = this.cache.get(source);
    if (!re) {
      re = new RegExp(source, 'u');
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(source, re);
    }
    return re;
  }
}

function checkPattern(text: string, where: string): Pattern {
  const regex = text.length >= 2 && text.startsWith('/') && text.endsWith('/');
  const pattern: Pattern = { source: regex ? text.slice(1, -1) : text, regex };
  for (const m of pattern.source.matchAll(/\$\{([^}]*)\}/g)) {
    if (!/^(account|labels:[A-Za-z][A-Za-z0-9_.-]{0,63})$/.test(m[1] ?? '')) {
      throw invalidInput('config_invalid', `${where}: unknown placeholder "\${${m[1]}}"; use \${account} or \${labels:<name>}`);
    }
  }
  // Compile once with placeholders standing in as literals, so a broken expression fails at start-up.
  try {
    new RegExp(toRegexSource(pattern, () => ['x'])[0] ?? '', 'u');
  } catch (e) {
    throw invalidInput('config_invalid', `${where}: not a valid regular expression (${(e as Error).message})`);
  }
  return pattern;
}

function expand(pattern: Pattern, principal: AccountPrincipal): string[] | null {
  let missing = false;
  const sources = toRegexSource(pattern, (placeholder) => {
    if (placeholder === 'account') return [principal.account];
    const values = principal.labels[placeholder.slice('labels:'.length)] ?? [];
    if (values.length === 0) missing = true;
    return values;
  });
  return missing || sources.length === 0 ? null : sources;
}

/** Anchored regular-expression sources for every combination of placeholder values. */
function toRegexSource(pattern: Pattern, valuesOf: (placeholder: string) => readonly string[]): string[] {
  // Split into literal text and placeholders, then take the cartesian product of the values.
  const parts: (string | { placeholder: string })[] = [];
  let last = 0;
  for (const m of pattern.source.matchAll(PLACEHOLDER)) {
    parts.push(pattern.source.slice(last, m.index));
    parts.push({ placeholder: m[1]! });
    last = m.index + m[0].length;
  }
  parts.push(pattern.source.slice(last));

  let sources = [''];
  for (const part of parts) {
    if (typeof part === 'string') {
      const piece = pattern.regex ? part : globToRegex(part);
      sources = sources.map((s) => s + piece);
      continue;
    }
    const values = valuesOf(part.placeholder);
    const next: string[] = [];
    for (const s of sources) for (const v of values) next.push(s + escapeRegex(v));
    if (next.length > MAX_EXPANSIONS) return [];
    sources = next;
  }
  return sources.map((s) => `^(?:${s})$`);
}

function globToRegex(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        out += '.*';
        i++;
      } else {
        out += '[^/]*';
      }
    } else if (c === '?') {
      out += '[^/]';
    } else {
      out += escapeRegex(c);
    }
  }
  return out;
}

function escapeRegex(text: string): string {
  return text.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}
