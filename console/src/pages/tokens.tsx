import { useState } from 'preact/hooks';
import { api, f, type ApiToken, type Page } from '../api';
import type { PageProps } from '../main';
import { Confirm, CopyButton, ErrorBox, useLoad, when, type ConfirmRequest } from '../ui';

const SCOPES = ['devices:read', 'devices:write', 'devices:test', 'containers:read', 'containers:write', 'containers:delete', 'tokens:write'];

export function TokensPage({ factory, session }: PageProps) {
  const [page, error, reload] = useLoad(() => api<Page<ApiToken>>('GET', `${f(factory)}/tokens`), [factory]);
  const [scopes, setScopes] = useState<string[]>(['containers:read']);
  const [description, setDescription] = useState('');
  const [days, setDays] = useState('');
  const [created, setCreated] = useState<(ApiToken & { secret: string }) | null>(null);
  const [createError, setCreateError] = useState<unknown>(null);
  const [confirm, setConfirm] = useState<ConfirmRequest | null>(null);
  // A token can only hand out scopes its creator holds.
  const grantable = SCOPES.filter((s) => session.scopes.includes(s));
  const login = created ? `echo "$TOLLGATE_SECRET" | docker login <registry> -u ${created.username} --password-stdin` : '';
  const skopeo = created ? `skopeo copy --dest-creds "${created.username}:$TOLLGATE_SECRET" oci:./image:latest docker://<registry>/${factory}/app:latest` : '';
  return (
    <>
      <h1>API tokens</h1>
      <section aria-labelledby="create">
        <h2 id="create">Create a token</h2>
        <form
          onSubmit={async (e) => {
            e.preventDefault();
            setCreateError(null);
            try {
              setCreated(await api('POST', `${f(factory)}/tokens`, { scopes, description: description || null, ...(days ? { days: Number(days) } : {}) }));
              setDescription('');
              reload();
            } catch (err) {
              setCreateError(err);
            }
          }}
        >
          <fieldset>
            <legend>Scopes</legend>
            {grantable.map((s) => (
              <label key={s} class="check">
                <input
                  type="checkbox"
                  checked={scopes.includes(s)}
                  onChange={(e) => setScopes(e.currentTarget.checked ? [...scopes, s] : scopes.filter((x) => x !== s))}
                />{' '}
                {s}
              </label>
            ))}
          </fieldset>
          <p>
            <label for="token-description">Description</label>
            <input id="token-description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} maxLength={200} placeholder="CI push" />
          </p>
          <p>
            <label for="token-days">Lifetime in days (empty: no expiry)</label>
            <input id="token-days" type="number" min={1} max={3650} value={days} onInput={(e) => setDays(e.currentTarget.value)} />
          </p>
          <button type="submit" disabled={scopes.length === 0}>
            Create token
          </button>
        </form>
        <ErrorBox error={createError} />
        {created && (
          <div class="secret" role="status">
            <p>
              <strong>Token {created.id} created.</strong> Its secret is shown only now: keep it in your CI secret store.
            </p>
            <p>
              Username <code>{created.username}</code>
            </p>
            <p class="secret-row">
              <code class="wrap">{created.secret}</code> <CopyButton text={created.secret} label="Copy secret" />
            </p>
            <p>Registry clients log in with both, for example:</p>
            <pre class="command">{login}</pre>
            <pre class="command">{skopeo}</pre>
            <button type="button" class="secondary" onClick={() => setCreated(null)}>
              Done, hide the secret
            </button>
          </div>
        )}
      </section>
      <h2>Tokens</h2>
      <ErrorBox error={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Id</th>
            <th scope="col">Scopes</th>
            <th scope="col">Description</th>
            <th scope="col">Created</th>
            <th scope="col">Expires</th>
            <th scope="col">Revoked</th>
            <th scope="col">Actions</th>
          </tr>
        </thead>
        <tbody>
          {page?.items.map((t) => (
            <tr key={t.id}>
              <td class="mono">{t.id}</td>
              <td>{t.scopes.join(', ')}</td>
              <td>{t.description ?? ''}</td>
              <td>{when(t.createdAt)}</td>
              <td>{when(t.expiresAt)}</td>
              <td>{when(t.revokedAt)}</td>
              <td>
                {!t.revokedAt && (
                  <button
                    type="button"
                    class="danger"
                    onClick={() =>
                      setConfirm({
                        title: `Revoke token ${t.id}?`,
                        consequence: `Everything that uses it (${t.description ?? 'no description'}) is refused from now on.`,
                        action: 'Revoke token',
                        danger: true,
                        run: async () => {
                          await api('DELETE', `${f(factory)}/tokens/${t.id}`);
                          reload();
                        },
                      })
                    }
                  >
                    Revoke
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <Confirm request={confirm} onClose={() => setConfirm(null)} />
    </>
  );
}
