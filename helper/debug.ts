/**
 * Diagnostics for operators chasing a failed pull: with `TOLLGATE_HELPER_DEBUG=1` the helper says
 * on stderr which config, cache and gateway it used and why it decided what it did. stderr is
 * safe for this: clients pass it through to the user and never parse it. Callers never pass a
 * secret; only sizes, paths, codes and timings.
 */

export type Debug = (message: string) => void;

export const DEBUG_ENV = 'TOLLGATE_HELPER_DEBUG';

export function debugEnabled(env: NodeJS.ProcessEnv): boolean {
  const value = env[DEBUG_ENV]?.trim().toLowerCase();
  return value === '1' || value === 'true' || value === 'yes';
}

export function createDebug(env: NodeJS.ProcessEnv, write: (text: string) => void): Debug {
  if (!debugEnabled(env)) return () => undefined;
  const started = Date.now();
  return (message) => {
    write(`docker-credential-tollgate: debug: +${Date.now() - started}ms ${message.replace(/[\r\n]+/g, ' ')}\n`);
  };
}

export const noDebug: Debug = () => undefined;
