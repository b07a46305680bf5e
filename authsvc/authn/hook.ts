/**
 * Extension hooks: a site's own authentication and authorization rules, as an executable or a
 * webhook, after docker_auth's ext_auth and ext_authz.
 *
 * Authentication hook (last in the chain: it sees only credentials nobody else claimed). Input:
 * `{"username","password","service","source"}` as one line of JSON on stdin, or as a POST body.
 *   executable  exit 0  accept; stdout empty or `{"labels": {"name": ["v", ...]}}`
 *               exit 1  refuse (401, `hook_denied`)
 *               exit 2  pass: no opinion, the credentials are nobody's (401)
 *               else    fail (503): other exit codes, signals, time-outs, unreadable stdout
 *   webhook     200     accept; the body must be a JSON object, `{}` or `{"labels": {...}}`
 *               401/403 refuse
 *               204/404 pass
 *               else    fail (503): other statuses (redirects are not followed), network errors,
 *                       time-outs, bodies that are not a JSON object or larger than 64 KiB
 * The account is always the username the client sent: an `account` in the answer is ignored (with
 * a warning), so the audit trail and `${account}` in ACL rules name what the client claimed.
 *
 * Authorization hook (asked after the ACL, once per resource the ACL granted something on). Input:
 * the AuthorizationQuestion `{"account","origin","labels","type","name","actions"}`.
 *   executable  exit 0 with a JSON array of action strings on stdout; webhook 200 with one as body:
 *               the allowed actions, intersected with the question's (the hook only narrows)
 *   executable  exit 1; webhook 403: nothing allowed
 *   anything else: nothing allowed, and a warning in the log (fail closed)
 *
 * Both: every call is bounded by `timeoutMs` (including a wait for a free slot); an executable that
 * outlives it is killed with its whole process group. At most `maxConcurrent` calls run at once;
 * up to 16 times as many wait their turn, and beyond that a call is answered "no" at once.
 */
import type { HookTargetConfig } from '../../shared/config-accounts.js';
import { labelNameSchema, labelsSchema } from '../../shared/config-accounts.js';
import type { Logger } from '../../shared/log.js';
import type { BasicCredentials } from '../credentials.js';
import { Limiter, postJson, QUEUE_PER_SLOT, runCommand, type RawAnswer } from './hook-transport.js';
import type { AccountAuthenticator, AuthnContext, AuthnOutcome, AuthorizationHook, AuthorizationQuestion, Labels } from './types.js';
import { PASS } from './types.js';

export interface HookOptions {
  log?: Logger;
}

/** Label names a hook may hand back; more is not an answer. */
const MAX_LABEL_NAMES = 64;
/** Characters of a hook's stderr that reach the log. */
const MAX_LOGGED_STDERR = 1024;

type HookKind = 'authentication' | 'authorization';

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/** One configured hook: the executable or webhook, its time-out and its concurrency limit. */
class HookTarget {
  private readonly limiter: Limiter;
  private readonly closing = new AbortController();
  private readonly inflight = new Set<Promise<RawAnswer>>();
  /** Names the hook in log lines: the executable's path, or the URL without credentials or query. */
  readonly target: string;
  private readonly webhook?: { url: string; headers: Record<string, string> };

  constructor(
    private readonly config: HookTargetConfig,
    readonly kind: HookKind,
  ) {
    if ((config.command === undefined) === (config.url === undefined)) {
      throw new Error(`the ${kind} hook needs exactly one of command and url`);
    }
    const slots = config.maxConcurrent ?? 4;
    this.limiter = new Limiter(slots, slots * QUEUE_PER_SLOT);
    this.target = config.command?.[0] ?? describeUrl(config.url ?? '');
    if (config.url !== undefined) this.webhook = webhookTarget(config.url);
  }

  get isWebhook(): boolean {
    return this.config.url !== undefined;
  }

  async call(payload: string): Promise<RawAnswer> {
    if (this.closing.signal.aborted) return { kind: 'closed' };
    const timeoutMs = this.config.timeoutMs ?? 2_000;
    const started = Date.now();
    const release = await this.limiter.acquire(timeoutMs);
    if (release === null) return this.closing.signal.aborted ? { kind: 'closed' } : { kind: 'busy' };
    const remaining = timeoutMs - (Date.now() - started);
    if (remaining <= 0) {
      release();
      return { kind: 'busy' };
    }
    const running =
      this.config.command !== undefined
        ? runCommand(this.config.command, `${payload}\n`, remaining, this.closing.signal)
        : postJson(this.webhook?.url ?? '', payload, remaining, this.closing.signal, this.webhook?.headers);
    this.inflight.add(running);
    try {
      return await running;
    } finally {
      this.inflight.delete(running);
      release();
    }
  }

  /** Kills running hook processes, aborts webhook requests and turns waiting callers away. */
  async close(): Promise<void> {
    this.closing.abort();
    this.limiter.drain();
    await Promise.allSettled([...this.inflight]);
  }
}

/**
 * fetch refuses URLs that carry credentials: credentials in the configured URL (the way a site's
 * webhook knows the request is Tollgate's) are sent as HTTP Basic instead.
 */
function webhookTarget(url: string): { url: string; headers: Record<string, string> } {
  const u = new URL(url);
  if (u.username === '' && u.password === '') return { url, headers: {} };
  const basic = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`, 'utf8').toString('base64');
  u.username = '';
  u.password = '';
  return { url: u.toString(), headers: { authorization: `Basic ${basic}` } };
}

function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return 'webhook';
  }
}

/**
 * A hook's stderr as it may appear in the log: decoded, cut short, control characters made
 * visible, and the password (should the hook echo its input) replaced.
 */
function stderrForLog(raw: Buffer | undefined, truncated: boolean | undefined, secret?: string): string | undefined {
  if (raw === undefined || raw.length === 0) return undefined;
  let text = raw.toString('utf8');
  // A cut buffer may end in the first characters of the password, which no longer match it whole.
  if (truncated && secret !== undefined && secret.length > 1) text = text.slice(0, Math.max(0, text.length - (secret.length - 1)));
  if (secret !== undefined && secret.length > 0) text = text.split(secret).join('[redacted]');
  text = text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, '?');
  return text.length > MAX_LOGGED_STDERR ? `${text.slice(0, MAX_LOGGED_STDERR)}...` : text;
}

/** The answer's text, if it is valid UTF-8. */
function answerText(bytes: Buffer): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

function parseJson(bytes: Buffer): { ok: true; value: unknown } | { ok: false } {
  const text = answerText(bytes);
  if (text === null) return { ok: false };
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return { ok: false };
  }
}

interface AuthnAnswer {
  labels: Labels;
  account?: unknown;
}

/**
 * The body of an accepting answer. An executable may say nothing (no labels); a webhook must send
 * a JSON object, so that a URL pointing at some page that answers 200 to everything accepts no one.
 */
function readAuthnAnswer(bytes: Buffer, emptyAllowed: boolean): AuthnAnswer | null {
  if (emptyAllowed && answerText(bytes)?.trim() === '') return { labels: {} };
  const parsed = parseJson(bytes);
  if (!parsed.ok) return null;
  const value = parsed.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const record = value as Record<string, unknown>;
  const out: AuthnAnswer = { labels: {} };
  if ('account' in record) out.account = record.account;
  if (record.labels === undefined) return out;
  if (typeof record.labels !== 'object' || record.labels === null || Array.isArray(record.labels)) return null;
  const names = Object.keys(record.labels);
  if (names.length > MAX_LABEL_NAMES) return null;
  if (names.some((n) => !labelNameSchema.safeParse(n).success)) return null;
  const labels = labelsSchema.safeParse(record.labels);
  if (!labels.success) return null;
  const copy: Record<string, readonly string[]> = {};
  for (const [name, values] of Object.entries(labels.data)) copy[name] = Object.freeze([...values]);
  out.labels = Object.freeze(copy);
  return out;
}

/**
 * Turns a site's authentication hook into the chain's last authenticator. It never throws: any
 * trouble with the hook is a `fail` (503), so nothing is issued when the hook cannot decide.
 */
export function createAuthenticationHook(config: HookTargetConfig, options: HookOptions = {}): AccountAuthenticator {
  const hook = new HookTarget(config, 'authentication');
  const log = options.log;
  let overrideWarned = false;

  const fail = (reason: 'hook_failed' | 'hook_timeout' | 'hook_busy', message: string): AuthnOutcome => ({ decision: 'fail', reason, message });

  function interpret(answer: RawAnswer, credentials: BasicCredentials, durationMs: number): AuthnOutcome {
    const base = { hook: hook.kind, target: hook.target, account: credentials.username, durationMs };
    const stderrOf = (a: { stderr?: Buffer; stderrTruncated?: boolean }) => stderrForLog(a.stderr, a.stderrTruncated, credentials.password);

    const accepted = (bytes: Buffer): AuthnOutcome => {
      const parsed = readAuthnAnswer(bytes, !hook.isWebhook);
      if (parsed === null) {
        log?.warn({ ...base, outcome: 'malformed_answer', answerBytes: bytes.length }, 'the authentication hook accepted, but its answer is not a JSON object with valid labels; refusing to decide');
        return fail('hook_failed', 'the authentication hook gave an answer that could not be read');
      }
      if (parsed.account !== undefined && parsed.account !== credentials.username && !overrideWarned) {
        overrideWarned = true;
        log?.warn(base, 'the authentication hook named another account; it is ignored: the account is the username the client sent');
      }
      return { decision: 'accept', principal: { origin: 'hook', account: credentials.username, labels: parsed.labels } };
    };

    switch (answer.kind) {
      case 'exited': {
        const stderr = stderrOf(answer);
        if (answer.code === 0 || answer.code === 1 || answer.code === 2) {
          if (stderr !== undefined) log?.info({ ...base, exitCode: answer.code, stderr }, 'the authentication hook wrote to stderr');
        }
        if (answer.code === 0) return accepted(answer.stdout);
        if (answer.code === 1) {
          return { decision: 'refuse', reason: 'hook_denied', message: 'the authentication hook refused these credentials', account: credentials.username };
        }
        if (answer.code === 2) return PASS;
        log?.warn({ ...base, outcome: 'exit_code', exitCode: answer.code, stderr }, 'the authentication hook exited with a code that is not 0, 1 or 2');
        return fail('hook_failed', 'the authentication hook failed');
      }
      case 'http': {
        const status = answer.status;
        if (status === 200) return accepted(answer.body);
        if (status === 401 || status === 403) {
          return { decision: 'refuse', reason: 'hook_denied', message: 'the authentication hook refused these credentials', account: credentials.username };
        }
        if (status === 204 || status === 404) return PASS;
        log?.warn({ ...base, outcome: 'http_status', status }, 'the authentication webhook answered with a status that is not 200, 204, 401, 403 or 404');
        return fail('hook_failed', 'the authentication hook failed');
      }
      case 'signaled':
        log?.warn({ ...base, outcome: 'signal', signal: answer.signal, stderr: stderrOf(answer) }, 'the authentication hook was killed by a signal');
        return fail('hook_failed', 'the authentication hook failed');
      case 'timeout':
        log?.warn({ ...base, outcome: 'timeout', timeoutMs: config.timeoutMs, stderr: stderrOf(answer) }, 'the authentication hook did not answer in time; it was stopped');
        return fail('hook_timeout', 'the authentication hook did not answer in time');
      case 'too_large':
        log?.warn({ ...base, outcome: 'answer_too_large', stderr: stderrOf(answer) }, 'the authentication hook said too much; it was stopped');
        return fail('hook_failed', 'the authentication hook gave an answer that could not be read');
      case 'busy':
        log?.warn({ ...base, outcome: 'busy', maxConcurrent: config.maxConcurrent }, 'every authentication hook slot stayed busy; the request is not decided');
        return fail('hook_busy', 'too many requests are waiting for the authentication hook; try again');
      case 'unreachable':
        log?.warn({ ...base, outcome: 'unreachable', error: answer.detail }, 'the authentication hook could not be run or reached');
        return fail('hook_failed', 'the authentication hook failed');
      case 'closed':
        return fail('hook_failed', 'the authentication hook is shutting down');
    }
  }

  return {
    origin: 'hook',
    async authenticate(credentials: BasicCredentials, context: AuthnContext): Promise<AuthnOutcome> {
      const started = Date.now();
      try {
        const payload = JSON.stringify({ username: credentials.username, password: credentials.password, service: context.service, source: context.source });
        const answer = await hook.call(payload);
        return interpret(answer, credentials, Date.now() - started);
      } catch (e) {
        // Not reachable by design; a bug here must still not issue anything.
        log?.error({ hook: hook.kind, target: hook.target, error: e instanceof Error ? e.name : 'unknown' }, 'the authentication hook call failed unexpectedly');
        return fail('hook_failed', 'the authentication hook failed');
      }
    },
    close: () => hook.close(),
  };
}

/**
 * Turns a site's authorization hook into a narrowing step after the ACL. It never throws and never
 * widens: the answer is intersected with what was asked, and any trouble means nothing allowed.
 */
export function createAuthorizationHook(config: HookTargetConfig, options: HookOptions = {}): AuthorizationHook {
  const hook = new HookTarget(config, 'authorization');
  const log = options.log;

  function interpret(answer: RawAnswer, question: AuthorizationQuestion, durationMs: number): string[] {
    const base = { hook: hook.kind, target: hook.target, account: question.account, resource: `${question.type}:${question.name}`, durationMs };
    const allowed = (bytes: Buffer): string[] => {
      const parsed = parseJson(bytes);
      if (!parsed.ok || !Array.isArray(parsed.value)) {
        log?.warn({ ...base, outcome: 'malformed_answer', answerBytes: bytes.length }, 'the authorization hook answer is not a JSON array of actions; nothing is allowed');
        return [];
      }
      const said = new Set(parsed.value.filter((a): a is string => typeof a === 'string'));
      const granted = question.actions.filter((a, i) => said.has(a) && question.actions.indexOf(a) === i);
      const ignored = [...said].filter((a) => !question.actions.includes(a));
      if (ignored.length > 0) log?.info({ ...base, ignored: ignored.slice(0, 8) }, 'the authorization hook allowed actions that were not asked; they are ignored');
      return granted;
    };
    switch (answer.kind) {
      case 'exited': {
        const stderr = stderrForLog(answer.stderr, answer.stderrTruncated);
        if (answer.code === 0) {
          if (stderr !== undefined) log?.info({ ...base, exitCode: 0, stderr }, 'the authorization hook wrote to stderr');
          return allowed(answer.stdout);
        }
        if (answer.code === 1) {
          if (stderr !== undefined) log?.info({ ...base, exitCode: 1, stderr }, 'the authorization hook wrote to stderr');
          return [];
        }
        log?.warn({ ...base, outcome: 'exit_code', exitCode: answer.code, stderr }, 'the authorization hook exited with a code that is not 0 or 1; nothing is allowed');
        return [];
      }
      case 'http':
        if (answer.status === 200) return allowed(answer.body);
        if (answer.status === 403) return [];
        log?.warn({ ...base, outcome: 'http_status', status: answer.status }, 'the authorization webhook answered with a status that is not 200 or 403; nothing is allowed');
        return [];
      case 'signaled':
        log?.warn({ ...base, outcome: 'signal', signal: answer.signal, stderr: stderrForLog(answer.stderr, answer.stderrTruncated) }, 'the authorization hook was killed by a signal; nothing is allowed');
        return [];
      case 'timeout':
        log?.warn({ ...base, outcome: 'timeout', timeoutMs: config.timeoutMs }, 'the authorization hook did not answer in time; it was stopped and nothing is allowed');
        return [];
      case 'too_large':
        log?.warn({ ...base, outcome: 'answer_too_large' }, 'the authorization hook said too much; it was stopped and nothing is allowed');
        return [];
      case 'busy':
        log?.warn({ ...base, outcome: 'busy', maxConcurrent: config.maxConcurrent }, 'every authorization hook slot stayed busy; nothing is allowed');
        return [];
      case 'unreachable':
        log?.warn({ ...base, outcome: 'unreachable', error: answer.detail }, 'the authorization hook could not be run or reached; nothing is allowed');
        return [];
      case 'closed':
        return [];
    }
  }

  return {
    async authorize(question: AuthorizationQuestion, _context: AuthnContext): Promise<string[]> {
      const started = Date.now();
      try {
        if (question.actions.length === 0) return [];
        const payload = JSON.stringify({
          account: question.account,
          origin: question.origin,
          labels: question.labels,
          type: question.type,
          name: question.name,
          actions: question.actions,
        });
        return interpret(await hook.call(payload), question, Date.now() - started);
      } catch (e) {
        log?.error({ hook: hook.kind, target: hook.target, error: e instanceof Error ? e.name : 'unknown' }, 'the authorization hook call failed unexpectedly; nothing is allowed');
        return [];
      }
    },
    close: () => hook.close(),
  };
}
