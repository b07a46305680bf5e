import { useState } from 'preact/hooks';
import { api, f, qs, type Device, type Page } from '../api';
import type { PageProps } from '../main';
import { ErrorBox, Link, Pager, StateBadge, useLoad, usePager, when } from '../ui';

export function DevicesPage({ factory, can }: PageProps) {
  const [search, setSearch] = useState('');
  const [state, setState] = useState('');
  const [test, setTest] = useState('');
  const filters = `${search}|${state}|${test}`;
  const pager = usePager(filters + factory);
  const [page, error] = useLoad(
    () => api<Page<Device>>('GET', `${f(factory)}/devices${qs({ search: search.trim(), state, test, limit: '25', cursor: pager.cursor })}`),
    [factory, filters, pager.cursor],
  );
  return (
    <>
      <div class="title-row">
        <h1>Devices</h1>
        {can('devices:write', 'devices:test') && (
          <Link class="button" href="/enroll">
            Enroll devices
          </Link>
        )}
      </div>
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <p>
          <label for="search">UUID or name</label>
          <input id="search" type="search" value={search} onInput={(e) => setSearch(e.currentTarget.value)} placeholder="3f2c8a52… or kiosk" />
        </p>
        <p>
          <label for="state">State</label>
          <select id="state" value={state} onChange={(e) => setState(e.currentTarget.value)}>
            <option value="">any</option>
            <option value="active">active</option>
            <option value="pending">pending</option>
            <option value="disabled">disabled</option>
            <option value="revoked">revoked</option>
          </select>
        </p>
        <p>
          <label for="kind">Kind</label>
          <select id="kind" value={test} onChange={(e) => setTest(e.currentTarget.value)}>
            <option value="">test and enrolled</option>
            <option value="false">enrolled only</option>
            <option value="true">test only</option>
          </select>
        </p>
      </form>
      <ErrorBox error={error} />
      <table>
        <caption class="visually-hidden">Devices of factory {factory}</caption>
        <thead>
          <tr>
            <th scope="col">UUID</th>
            <th scope="col">Name</th>
            <th scope="col">State</th>
            <th scope="col">Test</th>
            <th scope="col">Certificate expires</th>
          </tr>
        </thead>
        <tbody>
          {page?.items.map((d) => (
            <tr key={d.uuid}>
              <td class="mono">
                <Link href={`/devices/${d.uuid}`}>{d.uuid}</Link>
              </td>
              <td>{d.name ?? '—'}</td>
              <td>
                <StateBadge state={d.state} />
              </td>
              <td>{d.test ? 'test' : ''}</td>
              <td>{when(d.certificate.notAfter)}</td>
            </tr>
          ))}
          {page && page.items.length === 0 && (
            <tr>
              <td colSpan={5}>No devices match.</td>
            </tr>
          )}
        </tbody>
      </table>
      <Pager pager={pager} next={page?.next} />
    </>
  );
}
