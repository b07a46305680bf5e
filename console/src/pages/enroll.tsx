import { useState } from 'preact/hooks';
import { ApiError, api, f, type BulkRow, type Device, type Enrollment } from '../api';
import { deviceKeyAndCsr } from '../csr';
import type { PageProps } from '../main';
import { tar } from '../tar';
import { ErrorBox, Link, download, readFile } from '../ui';

interface Row {
  csr?: string;
  certificate?: string;
  name?: string;
}

const PEM = /-----BEGIN (CERTIFICATE REQUEST|NEW CERTIFICATE REQUEST|CERTIFICATE)-----[\s\S]*?-----END \1-----/g;

/** A PEM text's request or certificate, by its label. */
function rowOf(pem: string, name?: string): Row {
  const row: Row = /BEGIN CERTIFICATE-----/.test(pem) ? { certificate: pem } : { csr: pem };
  return name ? { ...row, name } : row;
}

/** RFC 4180 fields: quoted fields may hold commas, quotes ("") and line breaks (a PEM). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(cell), (cell = '');
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      if (row.some((x) => x.trim() !== '')) rows.push(row);
      row = [];
      cell = '';
    } else cell += c;
  }
  row.push(cell);
  if (row.some((x) => x.trim() !== '')) rows.push(row);
  return rows;
}

/**
 * Rows from the picked files: a CSV (a `pem` column, an optional `name` column) or PEM files,
 * each of which may hold several requests or certificates.
 */
export function rowsFrom(texts: string[]): Row[] {
  const rows: Row[] = [];
  for (const text of texts) {
    if (!text.trimStart().startsWith('-----BEGIN')) {
      const [header, ...body] = parseCsv(text);
      const cols = (header ?? []).map((h) => h.trim().toLowerCase());
      const pemCol = cols.findIndex((c) => c === 'pem' || c === 'csr' || c === 'certificate');
      const nameCol = cols.indexOf('name');
      for (const r of body) rows.push(rowOf((r[pemCol < 0 ? 0 : pemCol] ?? '').trim(), nameCol < 0 ? undefined : r[nameCol]?.trim()));
      continue;
    }
    for (const m of text.match(PEM) ?? []) rows.push(rowOf(`${m}\n`));
  }
  return rows;
}

function Single({ factory }: { factory: string }) {
  const [pem, setPem] = useState('');
  const [name, setName] = useState('');
  const [done, setDone] = useState<Enrollment | null>(null);
  const [error, setError] = useState<unknown>(null);
  return (
    <section aria-labelledby="single">
      <h2 id="single">One device</h2>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          setDone(null);
          try {
            setDone(await api<Enrollment>('POST', `${f(factory)}/devices`, { ...rowOf(pem.trim() + '\n'), ...(name ? { name } : {}) }));
            setPem('');
          } catch (err) {
            setError(err);
          }
        }}
      >
        <p>
          <label for="single-file">CSR or certificate file</label>
          <input id="single-file" type="file" accept=".csr,.pem,.crt" onChange={async (e) => setPem((await readFile(e.currentTarget))[0] ?? '')} />
        </p>
        <p>
          <label for="single-pem">… or paste it (PEM)</label>
          <textarea id="single-pem" rows={6} value={pem} onInput={(e) => setPem(e.currentTarget.value)} placeholder="-----BEGIN CERTIFICATE REQUEST-----" />
        </p>
        <p>
          <label for="single-name">Name (optional)</label>
          <input id="single-name" value={name} onInput={(e) => setName(e.currentTarget.value)} maxLength={128} />
        </p>
        <button type="submit" disabled={!pem.trim()}>
          Enroll
        </button>
      </form>
      <ErrorBox error={error} />
      {done && (
        <p role="status" class="ok">
          Enrolled <Link href={`/devices/${done.device.uuid}`}>{done.device.uuid}</Link>.{' '}
          <button type="button" class="secondary" onClick={() => download(`${done.device.uuid}.pem`, new Blob([done.certificate], { type: 'application/x-pem-file' }))}>
            Download certificate
          </button>
        </p>
      )}
    </section>
  );
}

function Bulk({ factory }: { factory: string }) {
  const [rows, setRows] = useState<Row[]>([]);
  const [results, setResults] = useState<BulkRow[] | null>(null);
  const [enrolled, setEnrolled] = useState<number | null>(null);
  const [error, setError] = useState<unknown>(null);
  return (
    <section aria-labelledby="bulk">
      <h2 id="bulk">Many devices</h2>
      <p class="hint">Pick CSR or certificate files, or a CSV with a <code>pem</code> column and an optional <code>name</code> column. All rows are enrolled, or none.</p>
      <p>
        <label for="bulk-files">Files</label>
        <input
          id="bulk-files"
          type="file"
          multiple
          accept=".csr,.pem,.crt,.csv"
          onChange={async (e) => {
            setResults(null);
            setEnrolled(null);
            setError(null);
            setRows(rowsFrom(await readFile(e.currentTarget)));
          }}
        />
      </p>
      <p>{rows.length > 0 ? `${rows.length} rows read.` : ''}</p>
      <button
        type="button"
        disabled={rows.length === 0}
        onClick={async () => {
          setError(null);
          try {
            const done = await api<{ enrolled: number; results: BulkRow[] }>('POST', `${f(factory)}/devices/bulk`, { rows });
            setResults(done.results);
            setEnrolled(done.enrolled);
          } catch (err) {
            const perRow = err instanceof ApiError ? (err.details?.rows as BulkRow[] | undefined) : undefined;
            setResults(perRow ?? null);
            setEnrolled(null);
            setError(err);
          }
        }}
      >
        Enroll {rows.length || ''} devices
      </button>
      <ErrorBox error={error} />
      {enrolled !== null && (
        <p role="status" class="ok">
          Enrolled {enrolled} devices.
        </p>
      )}
      {results && (
        <table>
          <caption>Result per row</caption>
          <thead>
            <tr>
              <th scope="col">Row</th>
              <th scope="col">UUID</th>
              <th scope="col">Result</th>
            </tr>
          </thead>
          <tbody>
            {results.map((r) => (
              <tr key={r.row} class={r.ok ? '' : 'bad'}>
                <td>{r.row}</td>
                <td class="mono">{r.uuid ?? '—'}</td>
                <td>{r.ok ? (enrolled !== null ? 'enrolled' : 'valid (not written: another row was refused)') : `refused: ${r.message} (${r.code})`}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

function TestDevice({ factory }: { factory: string }) {
  const [hours, setHours] = useState('1');
  const [registry, setRegistry] = useState('');
  const [done, setDone] = useState<Device | null>(null);
  const [error, setError] = useState<unknown>(null);
  return (
    <section aria-labelledby="test-device">
      <h2 id="test-device">Test device</h2>
      <p class="hint">A short-lived device for CI or a try-out. Its key is made in this browser and only goes into the bundle you download.</p>
      <form
        onSubmit={async (e) => {
          e.preventDefault();
          setError(null);
          try {
            const uuid = crypto.randomUUID();
            const { csrPem, keyPem } = await deviceKeyAndCsr(uuid, factory);
            const r = await api<Enrollment>('POST', `${f(factory)}/devices`, { csr: csrPem, test: true, hours: Number(hours) });
            const config = {
              gateway: r.gateway,
              certificate: 'device.pem',
              privateKey: 'device.key',
              caBundle: 'gateway-ca.pem',
              registries: registry.trim() ? [registry.trim()] : [],
            };
            download(
              `device-${uuid}.tar`,
              tar([
                { name: 'device/device.key', content: keyPem, mode: 0o600 },
                { name: 'device/device.pem', content: r.certificate, mode: 0o644 },
                { name: 'device/ca.pem', content: r.caCertificate, mode: 0o644 },
                { name: 'device/gateway-ca.pem', content: r.gatewayCa, mode: 0o644 },
                { name: 'device/device.json', content: `${JSON.stringify(config, null, 2)}\n`, mode: 0o644 },
              ]),
            );
            setDone(r.device);
          } catch (err) {
            setError(err);
          }
        }}
      >
        <p>
          <label for="test-hours">Lifetime (hours)</label>
          <input id="test-hours" type="number" min={1} max={720} value={hours} onInput={(e) => setHours(e.currentTarget.value)} />
        </p>
        <p>
          <label for="test-registry">Registry (host:port, optional)</label>
          <input id="test-registry" value={registry} onInput={(e) => setRegistry(e.currentTarget.value)} placeholder="registry.example.com" />
        </p>
        <button type="submit">Issue test device and download its bundle</button>
      </form>
      <ErrorBox error={error} />
      {done && (
        <p role="status" class="ok">
          Issued <Link href={`/devices/${done.uuid}`}>{done.uuid}</Link>, valid until {done.certificate.notAfter}. Unpack with <code>tar xf</code>.
        </p>
      )}
    </section>
  );
}

export function EnrollPage({ factory, can }: PageProps) {
  return (
    <>
      <h1>Enroll devices</h1>
      {can('devices:write') && <Single factory={factory} />}
      {can('devices:write') && <Bulk factory={factory} />}
      {can('devices:write', 'devices:test') && <TestDevice factory={factory} />}
    </>
  );
}
