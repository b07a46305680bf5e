import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, useSession, type Page, type Session } from './api';
import { AuditPage } from './pages/audit';
import { CasPage } from './pages/cas';
import { DevicePage } from './pages/device';
import { DevicesPage } from './pages/devices';
import { EnrollPage } from './pages/enroll';
import { SettingsPage } from './pages/settings';
import { SignInPage } from './pages/signin';
import { TokensPage } from './pages/tokens';
import { Link, setNavigator } from './ui';
import './styles.css';

/** What a page gets: the session, its factory, and whether a scope is held. */
export interface PageProps {
  session: Session;
  factory: string;
  can: (...scopes: string[]) => boolean;
}

interface NavItem {
  path: string;
  label: string;
  /** Shown when any of these scopes is held. */
  scopes: string[];
}

const NAV: NavItem[] = [
  { path: '/devices', label: 'Devices', scopes: ['devices:read', 'devices:write'] },
  { path: '/enroll', label: 'Enroll', scopes: ['devices:write', 'devices:test'] },
  { path: '/cas', label: 'CAs', scopes: ['devices:read', 'devices:write'] },
  { path: '/tokens', label: 'Tokens', scopes: ['tokens:write'] },
  { path: '/audit', label: 'Audit', scopes: ['devices:read', 'devices:write'] },
  { path: '/settings', label: 'Settings', scopes: ['devices:read', 'devices:write'] },
];

function page(path: string, props: PageProps) {
  // A page the scopes do not open is not offered: the first one they do stands in.
  const item = NAV.find((n) => path.startsWith(n.path)) ?? NAV[0]!;
  if (!props.can(...item.scopes)) {
    const home = NAV.find((n) => props.can(...n.scopes));
    if (!home) return <p>These credentials open no page of the console.</p>;
    path = home.path;
  }
  const device = /^\/devices\/([0-9a-f-]{36})$/.exec(path);
  if (device) return <DevicePage {...props} uuid={device[1]!} />;
  switch (path) {
    case '/enroll':
      return <EnrollPage {...props} />;
    case '/cas':
      return <CasPage {...props} />;
    case '/tokens':
      return <TokensPage {...props} />;
    case '/audit':
      return <AuditPage {...props} />;
    case '/settings':
      return <SettingsPage {...props} />;
    default:
      return <DevicesPage {...props} />;
  }
}

/** The operator may act on every factory: the one shown is picked here and remembered per tab. */
function FactoryPicker({ factory, onPick }: { factory: string | null; onPick: (name: string) => void }) {
  const [names, setNames] = useState<string[]>([]);
  useEffect(() => {
    void api<Page<{ name: string }>>('GET', '/factories').then((p) => {
      setNames(p.items.map((x) => x.name));
      if (!factory && p.items[0]) onPick(p.items[0].name);
    });
  }, []);
  return (
    <label class="factory-picker">
      Factory{' '}
      <select value={factory ?? ''} onChange={(e) => onPick(e.currentTarget.value)}>
        {names.map((n) => (
          <option key={n} value={n}>
            {n}
          </option>
        ))}
      </select>
    </label>
  );
}

function App() {
  const [path, setPath] = useState(location.pathname);
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [picked, setPicked] = useState<string | null>(sessionStorage.getItem('factory'));

  const go = (to: string) => {
    if (to !== location.pathname + location.search) history.pushState(null, '', to);
    setPath(new URL(to, location.href).pathname);
    window.scrollTo(0, 0);
  };
  setNavigator(go);
  const signedOut = () => {
    setSession(null);
    useSession(null, signedOut);
  };
  useSession(session ?? null, signedOut);

  useEffect(() => {
    const onPop = () => setPath(location.pathname);
    window.addEventListener('popstate', onPop);
    // Signed in already? The session cookie is HttpOnly: only the server can tell.
    if (!location.hash.startsWith('#code=')) {
      api<Session>('GET', '/session').then(setSession, () => setSession(null));
    } else {
      setSession(null);
    }
    return () => window.removeEventListener('popstate', onPop);
  }, []);

  useEffect(() => {
    const title = NAV.find((n) => path.startsWith(n.path))?.label ?? (session ? 'Devices' : 'Sign in');
    document.title = `${session === null ? 'Sign in' : title} · Tollgate console`;
  }, [path, session]);

  if (session === undefined) return <main id="main"><p>Loading…</p></main>;
  if (session === null) {
    return (
      <SignInPage
        onSignedIn={(s) => {
          useSession(s, signedOut);
          setSession(s);
          if (path === '/signin' || path === '/') go('/devices');
        }}
      />
    );
  }

  const factory = session.factory ?? picked;
  const can = (...scopes: string[]) => scopes.some((s) => session.scopes.includes(s));
  const signOut = async () => {
    await api('DELETE', '/session').catch(() => undefined);
    sessionStorage.removeItem('factory');
    signedOut();
    go('/signin');
  };
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <div class="brand">Tollgate</div>
        <nav aria-label="Console">
          <ul>
            {NAV.filter((n) => can(...n.scopes)).map((n) => (
              <li key={n.path}>
                <Link href={n.path} class={path.startsWith(n.path) || (path === '/' && n.path === '/devices') ? 'current' : ''}>
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          {session.kind === 'operator' ? (
            <FactoryPicker
              factory={factory}
              onPick={(name) => {
                sessionStorage.setItem('factory', name);
                setPicked(name);
              }}
            />
          ) : (
            <span>
              Factory <strong>{factory}</strong>
            </span>
          )}
          <span class="identity" title="as the audit trail records you">
            {session.identity}
          </span>
          <button type="button" class="secondary" onClick={signOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main">{factory ? page(path, { session, factory, can }) : <p>No factory to show.</p>}</main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
