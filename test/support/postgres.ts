import { inject } from 'vitest';
import { TEMPLATE_DATABASE } from './global-setup.js';

/**
 * The PostgreSQL side of the suites: the private cluster global-setup started. Each caller gets a
 * database of its own, so suites running in parallel never see each other's rows.
 */

/** True when the cluster runs (always in CI, where its absence fails global setup). */
export const postgresAvailable: boolean = inject('postgresAdminUrl') !== null;

/** A new database of this caller's own: migrated already, or `empty` (for tests of the migrations themselves). */
export async function createTestDatabase(options: { empty?: boolean } = {}): Promise<string> {
  const adminUrl = inject('postgresAdminUrl');
  if (adminUrl === null) throw new Error('PostgreSQL is not available');
  const pg = (await import('pg')).default;
  const name = `t_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}${options.empty ? '' : ` TEMPLATE ${TEMPLATE_DATABASE}`}`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.href;
}

/** Drops a database made by createTestDatabase, whoever is still connected. */
export async function dropTestDatabase(url: string): Promise<void> {
  const adminUrl = inject('postgresAdminUrl');
  if (adminUrl === null) return;
  const name = new URL(url).pathname.slice(1);
  if (!/^t_\d+_[a-z0-9]+$/.test(name)) throw new Error(`refusing to drop ${name}`);
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await client.end();
  }
}
