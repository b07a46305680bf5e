/**
 * A private PostgreSQL cluster in a temporary directory, for the tests and the benchmarks: initdb,
 * then pg_ctl start on a loopback port and a socket in the same directory, trust authentication
 * for loopback only. Started in about a second; removed with everything in it by `stop()`.
 *
 * initdb refuses to run as root (a cluster owned by root could be taken over by any server
 * process), so as root the cluster is created and run by an unprivileged account: `postgres`
 * (which Debian's package creates) or the one named in TOLLGATE_PG_USER.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './free-port.js';

export interface PgCluster {
  /** A superuser URL of the `postgres` database. */
  adminUrl: string;
  port: number;
  dir: string;
  /** A new database, owned by the superuser; resolves to its URL. */
  createDatabase(name?: string): Promise<string>;
  stop(): void;
}

export const PG_INSTALL_HINT = 'apt-get install -y postgresql';

/** The directory holding initdb and pg_ctl: PG_BINDIR, the newest /usr/lib/postgresql/N/bin, or PATH. */
export function postgresBinDir(): string | null {
  const explicit = process.env.PG_BINDIR;
  if (explicit && existsSync(join(explicit, 'initdb'))) return explicit;
  const base = '/usr/lib/postgresql';
  if (existsSync(base)) {
    const versions = readdirSync(base)
      .filter((v) => /^\d+$/.test(v) && existsSync(join(base, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(base, versions[0], 'bin');
  }
  const which = spawnSync('sh', ['-c', 'command -v initdb'], { encoding: 'utf8' });
  const found = which.status === 0 ? which.stdout.trim() : '';
  return found ? found.slice(0, found.lastIndexOf('/')) : null;
}

/** The uid/gid and name the cluster runs as: this process's, or an unprivileged account when root. */
function clusterOwner(): { name: string; uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  const name = process.env.TOLLGATE_PG_USER ?? 'postgres';
  const id = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (id.status !== 0 || gid.status !== 0) {
    throw new Error(`running as root, PostgreSQL needs an unprivileged account to own its cluster; "${name}" does not exist (${PG_INSTALL_HINT} creates "postgres", or set TOLLGATE_PG_USER)`);
  }
  return { name, uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export interface StartClusterOptions {
  /** Durability off (fsync, full-page writes): faster for tests; benchmarks keep the defaults. */
  durable?: boolean;
  /** Extra `-c name=value` settings. */
  settings?: Record<string, string | number>;
}

export async function startPgCluster(options: StartClusterOptions = {}): Promise<PgCluster> {
  const bin = postgresBinDir();
  if (!bin) throw new Error(`PostgreSQL binaries (initdb, pg_ctl) not found: ${PG_INSTALL_HINT}`);
  const owner = clusterOwner();
  const dir = mkdtempSync(join(tmpdir(), 'tollgate-pg-'));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const asOwner = (program: string, args: string[]) => {
    const [cmd, argv] = owner ? ['runuser', ['-u', owner.name, '--', join(bin, program), ...args]] : [join(bin, program), args];
    execFileSync(cmd, argv as string[], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  };
  const data = join(dir, 'data');
  const port = await freePort();
  try {
    asOwner('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    const settings: Record<string, string | number> = {
      listen_addresses: '127.0.0.1',
      port,
      unix_socket_directories: dir,
      max_connections: 200,
      ...(options.durable ? {} : { fsync: 'off', full_page_writes: 'off', synchronous_commit: 'off' }),
      ...options.settings,
    };
    const flags = Object.entries(settings)
      .map(([k, v]) => `-c ${k}=${v}`)
      .join(' ');
    asOwner('pg_ctl', ['-D', data, '-l', join(dir, 'postgres.log'), '-o', flags, '-w', '-t', '60', 'start']);
  } catch (e) {
    const err = e as Error & { stderr?: Buffer };
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start a private PostgreSQL cluster: ${err.stderr?.toString().trim() || err.message}`);
  }
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let stopped = false;
  return {
    adminUrl,
    port,
    dir,
    async createDatabase(name = `tollgate_${Math.random().toString(36).slice(2, 10)}`) {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`invalid database name ${name}`);
      const pg = (await import('pg')).default;
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        asOwner('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
      } catch {
        // already gone
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
