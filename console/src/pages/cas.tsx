import { useState } from 'preact/hooks';
import { api, f, type Ca, type Page } from '../api';
import type { PageProps } from '../main';
import { Confirm, CopyButton, ErrorBox, StateBadge, readFile, useLoad, when, type ConfirmRequest } from '../ui';

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

/** What a state change does to the devices the CA issued, counted. */
function consequence(ca: Ca, verb: 'disable' | 'enable' | 'revoke'): string {
  const d = ca.devices ?? { active: 0, pending: 0, disabled: 0, revoked: 0 };
  const live = d.active + d.pending + d.disabled;
  if (verb === 'revoke') return `${plural(live, 'device')} will be cut off (${d.active} active now). Revocation is final: every device this CA issued is refused from now on.`;
  if (verb === 'disable') return `No new devices can enroll with this CA. The ${plural(live, 'device')} it issued keep working.`;
  return 'The CA can enroll new devices again.';
}

function ExternalCaWizard({ factory, onAdded }: { factory: string; onAdded: () => void }) {
  const [code, setCode] = useState<{ code: string; expiresAt: string } | null>(null);
  const [certificate, setCertificate] = useState('');
  const [verification, setVerification] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [added, setAdded] = useState<Ca | null>(null);
  const openssl = code
    ? `openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout verification.key -subj "/CN=${code.code}" | openssl x509 -req -CA factory-ca.pem -CAkey factory-ca.key -days 1 -out verification.pem`
    : '';
  return (
    <section aria-labelledby="external">
      <h2 id="external">Register an external CA</h2>
      <p class="hint">For a CA whose key your factory keeps. You prove you hold the key by signing a throwaway certificate that names a one-time code.</p>
      <ol class="steps">
        <li>
          <h3>Get a registration code</h3>
          <button
            type="button"
            onClick={async () => {
              setError(null);
              try {
                setCode(await api<{ code: string; expiresAt: string }>('POST', `${f(factory)}/cas/registration-code`));
              } catch (e) {
                setError(e);
              }
            }}
          >
            Get a code
          </button>
          {code && (
            <p>
              Code <code>{code.code}</code> (single use, valid until {when(code.expiresAt)})
            </p>
          )}
        </li>
        <li>
          <h3>Sign a verification certificate with the CA key</h3>
          {code ? (
            <>
              <pre class="command">{openssl}</pre>
              <CopyButton text={openssl} label="Copy command" />
            </>
          ) : (
            <p class="hint">The command appears once you have a code.</p>
          )}
        </li>
        <li>
          <h3>Upload both certificates</h3>
          <p>
            <label for="ca-cert">CA certificate (factory-ca.pem)</label>
            <input id="ca-cert" type="file" accept=".pem,.crt" onChange={async (e) => setCertificate((await readFile(e.currentTarget))[0] ?? '')} />
          </p>
          <p>
            <label for="ca-verification">Verification certificate (verification.pem)</label>
            <input id="ca-verification" type="file" accept=".pem,.crt" onChange={async (e) => setVerification((await readFile(e.currentTarget))[0] ?? '')} />
          </p>
          <button
            type="button"
            disabled={!certificate || !verification}
            onClick={async () => {
              setError(null);
              try {
                setAdded(await api<Ca>('POST', `${f(factory)}/cas`, { kind: 'external', certificate, verificationCertificate: verification }));
                onAdded();
              } catch (e) {
                setError(e);
              }
            }}
          >
            Register CA
          </button>
        </li>
      </ol>
      <ErrorBox error={error} />
      {added && (
        <p role="status" class="ok">
          Registered {added.commonName}. Enroll its devices from their certificates.
        </p>
      )}
    </section>
  );
}

export function CasPage({ factory, can }: PageProps) {
  const [page, error, reload] = useLoad(() => api<Page<Ca>>('GET', `${f(factory)}/cas`), [factory]);
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  const [name, setName] = useState('');
  const [createError, setCreateError] = useState<unknown>(null);
  const write = can('devices:write');
  const act = (ca: Ca, verb: 'disable' | 'enable' | 'revoke') =>
    setConfirm({
      title: `${verb[0]!.toUpperCase()}${verb.slice(1)} CA ${ca.commonName}?`,
      consequence: consequence(ca, verb),
      action: `${verb[0]!.toUpperCase()}${verb.slice(1)} CA`,
      danger: verb !== 'enable',
      reason: true,
      run: async (reason) => {
        await api('POST', `${f(factory)}/cas/${ca.id}/${verb}`, { reason: reason || null });
        reload();
      },
    });
  return (
    <>
      <h1>Device CAs</h1>
      <ErrorBox error={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Common name</th>
            <th scope="col">Kind</th>
            <th scope="col">State</th>
            <th scope="col">Devices</th>
            <th scope="col">Expires</th>
            {write && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {page?.items.map((ca) => (
            <tr key={ca.id}>
              <td>
                {ca.commonName}
                <div class="mono small">{ca.id}</div>
              </td>
              <td>{ca.kind}</td>
              <td>
                <StateBadge state={ca.state} />
              </td>
              <td>{ca.devices ? `${ca.devices.active} active, ${ca.devices.pending + ca.devices.disabled} other` : ''}</td>
              <td>{when(ca.notAfter)}</td>
              {write && (
                <td class="buttons">
                  {ca.state === 'active' && (
                    <button type="button" class="danger" onClick={() => act(ca, 'disable')}>
                      Disable
                    </button>
                  )}
                  {ca.state === 'disabled' && (
                    <button type="button" onClick={() => act(ca, 'enable')}>
                      Enable
                    </button>
                  )}
                  {ca.state !== 'revoked' && (
                    <button type="button" class="danger" onClick={() => act(ca, 'revoke')}>
                      Revoke
                    </button>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
      {write && (
        <section aria-labelledby="online">
          <h2 id="online">Create an online CA</h2>
          <p class="hint">Tollgate makes and keeps its key, and signs your devices' CSRs with it.</p>
          <form
            onSubmit={async (e) => {
              e.preventDefault();
              setCreateError(null);
              try {
                await api('POST', `${f(factory)}/cas`, { kind: 'online', ...(name ? { commonName: name } : {}) });
                setName('');
                reload();
              } catch (err) {
                setCreateError(err);
              }
            }}
          >
            <p>
              <label for="ca-name">Common name (optional)</label>
              <input id="ca-name" value={name} onInput={(e) => setName(e.currentTarget.value)} maxLength={64} placeholder={`${factory} device CA`} />
            </p>
            <button type="submit">Create CA</button>
          </form>
          <ErrorBox error={createError} />
        </section>
      )}
      {write && <ExternalCaWizard factory={factory} onAdded={reload} />}
      <Confirm request={confirm} onClose={() => setConfirm(null)} />
    </>
  );
}
