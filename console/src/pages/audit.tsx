import { useState } from 'preact/hooks';
import { api, f, qs, type AuditRecord, type Page } from '../api';
import type { PageProps } from '../main';
import { ErrorBox, Pager, StateBadge, useLoad, usePager, when } from '../ui';

/** A datetime-local value (the browser's local time) as RFC 3339 UTC. */
const utc = (local: string) => (local ? new Date(local).toISOString() : '');

export function AuditPage({ factory }: PageProps) {
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [actor, setActor] = useState('');
  const [action, setAction] = useState('');
  const [outcome, setOutcome] = useState('');
  const filters = { from: utc(from), to: utc(to), actor: actor.trim(), action: action.trim(), outcome };
  const key = JSON.stringify(filters);
  const pager = usePager(key + factory);
  const [page, error] = useLoad(
    () => api<Page<AuditRecord>>('GET', `${f(factory)}/audit${qs({ ...filters, order: 'desc', limit: '50', cursor: pager.cursor })}`),
    [factory, key, pager.cursor],
  );
  const exportUrl = (format: string) => `/v1${f(factory)}/audit/export${qs({ ...filters, format })}`;
  return (
    <>
      <div class="title-row">
        <h1>Audit trail</h1>
        <div class="buttons">
          <a class="button secondary" href={exportUrl('ndjson')} download>
            Export NDJSON
          </a>
          <a class="button secondary" href={exportUrl('csv')} download>
            Export CSV
          </a>
        </div>
      </div>
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <p>
          <label for="from">From</label>
          <input id="from" type="datetime-local" value={from} onInput={(e) => setFrom(e.currentTarget.value)} />
        </p>
        <p>
          <label for="to">To</label>
          <input id="to" type="datetime-local" value={to} onInput={(e) => setTo(e.currentTarget.value)} />
        </p>
        <p>
          <label for="actor">Actor</label>
          <input id="actor" value={actor} onInput={(e) => setActor(e.currentTarget.value)} placeholder="oidc:alice@example.com" />
        </p>
        <p>
          <label for="action">Action</label>
          <input id="action" value={action} onInput={(e) => setAction(e.currentTarget.value)} placeholder="device.revoked" />
        </p>
        <p>
          <label for="outcome">Outcome</label>
          <select id="outcome" value={outcome} onChange={(e) => setOutcome(e.currentTarget.value)}>
            <option value="">any</option>
            <option value="success">success</option>
            <option value="denied">denied</option>
          </select>
        </p>
      </form>
      <ErrorBox error={error} />
      <table>
        <caption class="visually-hidden">Audit records, newest first</caption>
        <thead>
          <tr>
            <th scope="col">When</th>
            <th scope="col">Actor</th>
            <th scope="col">Action</th>
            <th scope="col">Outcome</th>
            <th scope="col">Target</th>
            <th scope="col">Reason</th>
            <th scope="col">Source</th>
          </tr>
        </thead>
        <tbody>
          {page?.items.map((r) => (
            <tr key={r.id}>
              <td>{when(r.at)}</td>
              <td class="mono">{r.actor}</td>
              <td>{r.action}</td>
              <td>
                <StateBadge state={r.outcome} />
              </td>
              <td class="mono">{r.target ?? ''}</td>
              <td>{r.reason ?? ''}</td>
              <td>{r.source ?? ''}</td>
            </tr>
          ))}
          {page && page.items.length === 0 && (
            <tr>
              <td colSpan={7}>No records match.</td>
            </tr>
          )}
        </tbody>
      </table>
      <Pager pager={pager} next={page?.next} />
    </>
  );
}
