import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import { PostgresStore } from '../../shared/store/index.js';
import { PG_INSTALL_HINT, postgresBinDir, startPgCluster } from '../../tools/pg-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the private PostgreSQL cluster every suite creates its databases in; null when PostgreSQL is not installed (never in CI). */
    postgresAdminUrl: string | null;
  }
}

/** The migrated database every suite's database is copied from. */
export const TEMPLATE_DATABASE = 'tollgate_template';

/**
 * Several suites run the compiled programs (the CLI, the credential helper, the console served by
 * the admin listener) as real processes. Build them once, before any suite starts, so no suite
 * rebuilds dist/ while another runs it. Types are checked separately (`npm test` runs tsc --noEmit
 * first), so emit skips the check.
 *
 * Then one private PostgreSQL cluster for the whole run (each suite makes its own database in it):
 * in CI a missing PostgreSQL fails the run, never skips its suites.
 */
export default async function setup(project: TestProject): Promise<() => void> {
  const root = resolve(import.meta.dirname, '..', '..');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json'), '--noCheck'], {
    cwd: root,
    stdio: 'inherit',
  });
  // The console as `npm run build` makes it: vitest's NODE_ENV=test would give a development bundle.
  execFileSync(process.execPath, [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', join(root, 'console', 'vite.config.ts')], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, NODE_ENV: 'production' },
  });
  // The device side as it ships (package.json bin, the device package): the bundles.
  execFileSync(process.execPath, [join(root, 'tools', 'bundle-device.mjs'), join(root, 'dist', 'device')], { cwd: root, stdio: 'inherit' });
  // The CLI and the services as they ship: the bundle (tools/bundle-cli.mjs).
  execFileSync(process.execPath, [join(root, 'tools', 'bundle-cli.mjs')], { cwd: root, stdio: 'inherit' });
  if (!postgresBinDir()) {
    if (process.env.CI) throw new Error(`CI must run the PostgreSQL suites, but PostgreSQL is not installed: ${PG_INSTALL_HINT}`);
    console.warn(`skipping the PostgreSQL suites: PostgreSQL is not installed (${PG_INSTALL_HINT})`);
    project.provide('postgresAdminUrl', null);
    return () => undefined;
  }
  const cluster = await startPgCluster();
  // A migrated database every suite's database is copied from (CREATE DATABASE ... TEMPLATE), so
  // each test pays for a file copy, not for running every migration again.
  const template = await cluster.createDatabase(TEMPLATE_DATABASE);
  const store = new PostgresStore(template, { poolSize: 1 });
  await store.ready();
  await store.close();
  project.provide('postgresAdminUrl', cluster.adminUrl);
  return () => cluster.stop();
}
