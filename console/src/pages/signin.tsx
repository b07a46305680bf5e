import { useEffect, useState } from 'preact/hooks';
import { api, type Session } from '../api';
import { ErrorBox } from '../ui';

const REASONS: Record<string, string> = {
  console_role_missing: 'You are signed in with your company account, but no console role gives you a factory. Ask your Tollgate operator.',
  oidc_state_mismatch: 'That sign-in was started elsewhere or took too long. Try again.',
  oidc_sign_in_failed: 'The identity provider did not sign you in.',
};

export function SignInPage({ onSignedIn }: { onSignedIn: (s: Session) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [oidc, setOidc] = useState(false);
  const [busy, setBusy] = useState(false);
  const failed = new URLSearchParams(location.search).get('error');

  const signIn = async (body: { token?: string; code?: string }) => {
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await api<Session>('POST', '/session', body));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    void api<{ oidc: boolean }>('GET', '/session/options').then((o) => setOidc(o.oidc), () => undefined);
    // A one-time link from `tollgate console`: the code is in the fragment, which no server sees.
    const useLink = () => {
      const code = /^#code=([A-Za-z0-9_-]+)$/.exec(location.hash)?.[1];
      if (!code) return;
      history.replaceState(null, '', '/signin');
      void signIn({ code });
    };
    useLink();
    // The link may also be opened in a tab that already shows this page.
    window.addEventListener('hashchange', useLink);
    return () => window.removeEventListener('hashchange', useLink);
  }, []);

  return (
    <main id="main" class="signin">
      <h1>Tollgate console</h1>
      <p>Sign in to manage your factory's devices, CAs and tokens.</p>
      {failed && (
        <p class="error" role="alert">
          {REASONS[failed] ?? `Sign-in failed (${failed}).`}
        </p>
      )}
      {oidc && (
        <section aria-labelledby="sso">
          <h2 id="sso">Company account</h2>
          <a class="button" href="/v1/session/oidc">
            Sign in with your company account
          </a>
        </section>
      )}
      <section aria-labelledby="with-token">
        <h2 id="with-token">Admin API token</h2>
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void signIn({ token });
          }}
        >
          <label for="token">Token</label>
          <input id="token" type="password" autocomplete="off" placeholder="tga_…" value={token} onInput={(e) => setToken(e.currentTarget.value)} required />
          <button type="submit" disabled={busy}>
            Sign in
          </button>
        </form>
        <p class="hint">The console keeps only a session cookie; the token never stays in the browser.</p>
      </section>
      <ErrorBox error={error} />
    </main>
  );
}
