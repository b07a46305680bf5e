import type { AuditJson } from '../../admin/present.js';
import { flag, intOption, stringOption } from '../args.js';
import type { Command, Input, OptionSpec } from '../command.js';
import type { Context } from '../context.js';
import { usageError } from '../failure.js';
import { nextPageHint, table } from '../format.js';

/**
 * `tollgate audit` and `audit-all`: read and export the audit trail. A table or --json shows one
 * page (100 records unless --limit says otherwise; the next page's command goes to stderr); NDJSON
 * and CSV export every matching record, page after page, and with --follow keep printing new ones
 * as they are written, until interrupted.
 */

const FORMATS = ['table', 'ndjson', 'csv'] as const;
type Format = (typeof FORMATS)[number] | 'json';

/** Pages are at most this long; an export asks for as many as it needs. */
const PAGE = 1000;
const FOLLOW_INTERVAL_MS = 1000;
/** Records are numbered when committed but dated when asked for: a follow looks this far back. */
const FOLLOW_OVERLAP_MS = 60_000;
const COLUMNS = ['id', 'at', 'actor', 'action', 'outcome', 'target', 'reason', 'source', 'details'] as const;

const exportOptions: Record<string, OptionSpec> = {
  since: { type: 'string', value: 'time', help: 'only records written at or after this time: 2026-11-30T12:00:00Z, or an age such as 30m, 24h, 7d (also --from)' },
  until: { type: 'string', value: 'time', help: 'only records written before this time, in the same forms (also --to)' },
  from: { type: 'string', value: 'time', help: 'the same as --since' },
  to: { type: 'string', value: 'time', help: 'the same as --until' },
  format: { type: 'string', value: 'format', choices: FORMATS, help: 'table (default), ndjson or csv: NDJSON and CSV export every matching record' },
  follow: { type: 'boolean', help: 'keep printing new records as they are written, until interrupted (ndjson, csv or table)' },
  limit: { type: 'string', value: 'n', help: 'at most this many (default: 100 for a table or --json, all for ndjson and csv)' },
};

const AGE = /^(\d{1,9})([smhd])$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/;

/** An RFC 3339 time, or an age before now; ms since the epoch. */
export function parseTime(raw: string, name: string, now: number): number {
  const age = AGE.exec(raw);
  if (age) return now - Number(age[1]) * UNIT_MS[age[2] as keyof typeof UNIT_MS];
  const ms = RFC3339.test(raw) ? Date.parse(raw) : NaN;
  if (!Number.isFinite(ms)) throw usageError(`${name}_invalid`, `--${name} must be a time such as 2026-11-30T12:00:00Z or an age such as 24h, not "${raw.slice(0, 40)}"`);
  return ms;
}

/** --since or its other name --from (one of them), as ms. */
function timeOption(input: Input, name: 'since' | 'until', alias: 'from' | 'to', now: number): number | undefined {
  const raw = stringOption(input, name);
  const other = stringOption(input, alias);
  if (raw !== undefined && other !== undefined) throw usageError('usage_option_conflict', `--${name} and --${alias} are the same option: give one`);
  if (raw !== undefined) return parseTime(raw, name, now);
  return other === undefined ? undefined : parseTime(other, alias, now);
}

/** RFC 4180 fields; a cell a spreadsheet would run as a formula is prefixed with a quote. */
function csvCell(value: unknown): string {
  let s = value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function tableText(records: readonly AuditJson[]): string {
  return table(['ID', 'AT', 'ACTOR', 'ACTION', 'OUTCOME', 'TARGET', 'REASON'], records.map((r) => [r.id, r.at, r.actor, r.action, r.outcome, r.target, r.reason]));
}

type Writer = (records: readonly AuditJson[], first: boolean) => void;

function writerFor(ctx: Context, format: Exclude<Format, 'json'>): Writer {
  const out = (text: string) => ctx.io.stdout(text);
  switch (format) {
    case 'ndjson':
      return (records) => out(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    case 'csv':
      return (records, first) => out(`${first ? `${COLUMNS.join(',')}\r\n` : ''}${records.map((r) => `${COLUMNS.map((c) => csvCell(r[c])).join(',')}\r\n`).join('')}`);
    case 'table':
      return (records, first) => {
        if (records.length === 0 && !first) return;
        const rendered = tableText(records);
        // Followed records come one batch at a time, without the header again.
        out(`${first ? rendered : rendered.split('\n').slice(1).join('\n')}\n`);
      };
  }
}

interface Query {
  limit: number;
  since?: number;
  until?: number;
  /** Where the previous page ended (an opaque cursor or a record id, as the source gave it). */
  cursor?: string;
}

/** One page of records, oldest first, and where the next one starts (null: no more). */
type Fetch = (query: Query) => Promise<{ items: AuditJson[]; next: string | null }>;

function untilInterrupted(): { stopped: () => boolean; sleep: (ms: number) => Promise<void>; dispose: () => void } {
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = () => {
    stopped = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return {
    stopped: () => stopped,
    sleep: (ms) =>
      new Promise((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      }),
    dispose: () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    },
  };
}

async function runAudit(ctx: Context, input: Input, fetch: Fetch, again: string[]): Promise<void> {
  const asked = stringOption(input, 'format') as Format | undefined;
  if (asked !== undefined && !(FORMATS as readonly string[]).includes(asked)) throw usageError('format_invalid', `--format must be one of ${FORMATS.join(', ')}`);
  if (asked !== undefined && ctx.json) throw usageError('usage_option_conflict', 'give --json or --format, not both');
  const format: Format = asked ?? (ctx.json ? 'json' : 'table');
  const follow = flag(input, 'follow');
  const now = Date.now();
  const since = timeOption(input, 'since', 'from', now);
  const until = timeOption(input, 'until', 'to', now);
  if (follow && format === 'json') throw usageError('usage_option_conflict', '--follow writes records as they come: use --format ndjson (a JSON array never ends)');
  if (follow && until !== undefined) throw usageError('usage_option_conflict', '--follow and --until exclude each other: records written later are never before --until');
  if (since !== undefined && until !== undefined && until <= since) throw usageError('until_invalid', '--until must be later than --since');
  const window = { ...(since !== undefined ? { since } : {}), ...(until !== undefined ? { until } : {}) };
  const after = stringOption(input, 'after');

  if (format === 'json' || (format === 'table' && !follow)) {
    const page = await fetch({ ...window, limit: intOption(input, 'limit', 1, PAGE) ?? 100, ...(after !== undefined ? { cursor: after } : {}) });
    nextPageHint(ctx, page.next, again);
    ctx.print(page.items, () => tableText(page.items));
    return;
  }

  const limit = intOption(input, 'limit', 1, 1_000_000_000) ?? Infinity;
  const write = writerFor(ctx, format);
  let written = 0;
  let first = true;
  let last: AuditJson | undefined;
  /** Every page from `start`, writing the records not written yet. */
  const drain = async (start: Query) => {
    let query = start;
    for (;;) {
      const page = await fetch(query);
      const fresh = page.items.filter((r) => last === undefined || r.id > last.id).slice(0, Math.max(0, limit - written));
      if (fresh.length > 0 || first) write(fresh, first);
      first = false;
      written += fresh.length;
      last = fresh.at(-1) ?? last;
      if (page.next === null || written >= limit) return;
      query = { ...query, cursor: page.next };
    }
  };
  await drain({ ...window, limit: PAGE, ...(after !== undefined ? { cursor: after } : {}) });
  if (!follow) return;
  const signal = untilInterrupted();
  try {
    while (!signal.stopped() && written < limit) {
      await signal.sleep(FOLLOW_INTERVAL_MS);
      if (signal.stopped()) break;
      // Look again from shortly before the newest record seen; what was written already is skipped.
      const from = last ? Math.max(since ?? 0, Date.parse(last.at) - FOLLOW_OVERLAP_MS) : since;
      await drain({ limit: PAGE, ...(from !== undefined ? { since: from } : {}) });
    }
  } finally {
    signal.dispose();
  }
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export const auditCommands: Command[] = [
  {
    name: ['audit'],
    args: ['factory'],
    usage: '<factory> [--target <id>] [--actor <actor>] [--action <action>] [--outcome success|denied] [--since <time>] [--until <time>] [--format table|ndjson|csv] [--follow] [--limit <n>] [--after <cursor>]',
    summary: 'show or export the audit trail of a factory, oldest first',
    details: [
      'When more records follow a table or --json page, the command that shows the next page is printed on stderr.',
      'Examples: tollgate audit demo --since 24h --format csv > audit.csv; tollgate audit demo --format ndjson --follow',
    ].join('\n'),
    options: {
      target: { type: 'string', value: 'id', help: 'only records about this device, token or CA' },
      actor: { type: 'string', value: 'actor', help: 'only records of this actor, e.g. token:tok_... or oidc:alice@example.com' },
      action: { type: 'string', value: 'action', help: 'only records of this action, e.g. device.revoked' },
      outcome: { type: 'string', value: 'outcome', choices: ['success', 'denied'], help: 'only success or denied records' },
      ...exportOptions,
      after: { type: 'string', value: 'cursor', help: 'continue from the cursor the previous page printed' },
    },
    mode: 'any',
    async run(ctx, input) {
      const filter = {
        target: stringOption(input, 'target'),
        actor: stringOption(input, 'actor'),
        action: stringOption(input, 'action'),
        outcome: stringOption(input, 'outcome'),
      };
      await runAudit(
        ctx,
        input,
        (q) => ctx.client().audit(input.args.factory!, { ...filter, from: iso(q.since), to: iso(q.until), limit: q.limit, cursor: q.cursor }),
        ['audit', input.args.factory!],
      );
    },
  },
  {
    name: ['audit-all'],
    args: [],
    usage: '[--action <action>] [--since <time>] [--until <time>] [--format table|ndjson|csv] [--follow] [--limit <n>] [--after <id>]',
    summary: "show or export the whole audit trail, oldest first: every factory's and the accounts' (operator only)",
    details: 'Accounts (static users, OIDC, AWS instances, hook users) belong to no factory; their token requests are recorded here with actors such as user:alice or oidc:dev@example.com.',
    options: {
      action: { type: 'string', value: 'action', help: 'only records of this action, e.g. realm.refused' },
      ...exportOptions,
      after: { type: 'string', value: 'id', help: 'continue after this record id' },
    },
    mode: 'any',
    async run(ctx, input) {
      const action = stringOption(input, 'action');
      await runAudit(
        ctx,
        input,
        (q) => ctx.client().auditAll({ ...(action !== undefined ? { action } : {}), from: iso(q.since), to: iso(q.until), limit: q.limit, cursor: q.cursor }),
        ['audit-all'],
      );
    },
  },
  {
    name: ['whoami'],
    args: [],
    usage: '',
    summary: 'show who the CLI acts as: the operator (local) or a token (remote)',
    mode: 'any',
    async run(ctx) {
      const me = await ctx.client().whoami();
      ctx.print(me, () =>
        me.kind === 'operator'
          ? 'tokenId' in me && me.tokenId
            ? `operator (token ${me.tokenId})`
            : 'operator (local: the store and key files directly)'
          : me.kind === 'person'
            ? `${me.identity} of factory ${me.factory ?? '?'} (scopes: ${me.scopes.join(', ')})`
            : `token ${me.token.id} of factory ${me.factory ?? '?'} (scopes: ${me.token.scopes.join(', ')})`,
      );
    },
  },
];
