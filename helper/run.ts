import { CredentialCache, isFresh } from './cache.js';
import { loadDeviceIdentity, type DeviceConfig, type DeviceSettings } from './config.js';
import { obtainCredentials } from './credentials.js';
import { createDebug, type Debug } from './debug.js';
import { HelperError, oneLine } from './errors.js';
import { renewalState } from './renewal-due.js';
import { deviceSettings } from './settings.js';
import {
  CREDENTIALS_NOT_FOUND,
  HELPER_NAME,
  isAction,
  MAX_STDIN_BYTES,
  NotFoundError,
  registryHost,
  USAGE,
  type Credentials,
} from './protocol.js';
import { packageVersion } from './version.js';

/**
 * The helper as a function: arguments, stdin and environment in; stdout and exit code out. It
 * never throws: every failure becomes one `tollgate: ...` line on stdout with exit code 1, which
 * is how the protocol reports errors (clients show stdout to the user).
 *
 * A client runs the helper once per image it pulls, so a `get` answered from the cache loads only
 * what that takes: the gateway client, the renewal machinery and the config schema are imported
 * when a call needs them (a token to fetch, a renewal due, a config to refuse).
 */

export interface HelperResult {
  stdout: string;
  exitCode: number;
}

export interface HelperOptions {
  /** Where debug lines go (default: process.stderr). */
  stderr?: (text: string) => void;
  /** Clock for token freshness (tests move it forward). */
  now?: () => number;
  /** Gateway call budgets, milliseconds. */
  timeoutMs?: number;
  connectTimeoutMs?: number;
}

interface Context {
  env: NodeJS.ProcessEnv;
  debug: Debug;
  now: () => number;
  options: HelperOptions;
}

const ok = (stdout = ''): HelperResult => ({ stdout, exitCode: 0 });

function checkStdinSize(stdin: string): void {
  const bytes = Buffer.byteLength(stdin, 'utf8');
  if (bytes > MAX_STDIN_BYTES) {
    throw new HelperError('input_too_large', `input on stdin is larger than ${MAX_STDIN_BYTES / 1024} KiB; expected a registry server URL`);
  }
}

function serverUrlFrom(stdin: string): string {
  checkStdinSize(stdin);
  const url = stdin.trim();
  if (url === '') throw new HelperError('server_url_missing', 'no server URL on stdin');
  return url;
}

async function get(stdin: string, ctx: Context): Promise<HelperResult> {
  const serverUrl = serverUrlFrom(stdin);
  const host = registryHost(serverUrl);
  const settings = await deviceSettings(ctx.env);
  ctx.debug(`config ${settings.path}: gateway ${settings.gateway}, registries ${settings.registries.join(', ')}`);
  if (host === undefined || !settings.registries.includes(host)) {
    ctx.debug(`${host ?? 'unparseable server URL'} is not a configured registry: no credentials`);
    throw new NotFoundError();
  }
  const config = await renewQuietly(settings, await loadDeviceIdentity(settings), ctx);
  const creds = await obtainCredentials(config, {
    env: ctx.env,
    now: ctx.now,
    debug: ctx.debug,
    fetch: async (c) =>
      (await import('./gateway-client.js')).fetchHubCreds(c, {
        debug: ctx.debug,
        now: ctx.now,
        ...(ctx.options.timeoutMs !== undefined ? { timeoutMs: ctx.options.timeoutMs } : {}),
        ...(ctx.options.connectTimeoutMs !== undefined ? { connectTimeoutMs: ctx.options.connectTimeoutMs } : {}),
      }),
  });
  const answer: Credentials = { ServerURL: serverUrl, Username: creds.username, Secret: creds.secret };
  return ok(`${JSON.stringify(answer)}\n`);
}

/**
 * Renews the device certificate when it is due; returns the identity to ask with (the renewed
 * one, if it was). A failed renewal must not cost a pull while the current certificate is still
 * valid, so it is only reported on the debug channel; the next `get` tries again, unless the
 * gateway refused this certificate's renewal for good (a test certificate): that is remembered
 * next to the certificate, and not asked again.
 */
async function renewQuietly(settings: DeviceSettings, identity: DeviceConfig, ctx: Context): Promise<DeviceConfig> {
  const random = Math.random();
  const state = await renewalState(identity, ctx.now(), random);
  if (!state.unconfirmed) {
    if (!state.due) {
      ctx.debug(`certificate renewal due at ${new Date(state.dueAt).toISOString()}`);
      return identity;
    }
    if (state.refused !== null) {
      ctx.debug(`certificate renewal not asked for: the gateway refused it for this certificate (${state.refused})`);
      return identity;
    }
  }
  try {
    const { renewIfDue } = await import('./renew.js');
    const result = await renewIfDue(settings, {
      identity,
      random: () => random,
      now: ctx.now,
      debug: ctx.debug,
      ...(ctx.options.timeoutMs !== undefined ? { timeoutMs: ctx.options.timeoutMs } : {}),
    });
    if (result.renewed) ctx.debug(`certificate renewed; valid until ${new Date(result.notAfter).toISOString()}`);
    // Renewed here, or by another process meanwhile: the files now hold another certificate.
    return result.fingerprint256 === identity.certificate.fingerprint256 ? identity : await loadDeviceIdentity(settings);
  } catch (e) {
    ctx.debug(`certificate renewal failed: ${e instanceof HelperError ? e.code : ''} ${e instanceof Error ? oneLine(e.message) : String(e)}`);
    return identity;
  }
}

async function openCache(config: DeviceConfig, ctx: Context): Promise<CredentialCache | undefined> {
  return CredentialCache.open(ctx.env, { gateway: config.gateway, fingerprint: config.certificate.fingerprint256 }, ctx.debug);
}

async function erase(stdin: string, ctx: Context): Promise<HelperResult> {
  const host = registryHost(serverUrlFrom(stdin));
  const settings = await deviceSettings(ctx.env);
  if (host === undefined || !settings.registries.includes(host)) {
    ctx.debug(`${host ?? 'unparseable server URL'} is not a configured registry: nothing to erase`);
    return ok();
  }
  const cache = await openCache(await loadDeviceIdentity(settings), ctx);
  await cache?.remove();
  return ok();
}

async function list(ctx: Context): Promise<HelperResult> {
  const settings = await deviceSettings(ctx.env);
  let username = '';
  try {
    const config = await loadDeviceIdentity(settings);
    const entry = await (await openCache(config, ctx))?.read();
    username = entry && isFresh(entry, ctx.now()) ? entry.username : (config.certificate.commonName ?? '');
  } catch (e) {
    // list is informational: a device identity that cannot be read just means no user name.
    ctx.debug(`device identity not readable for list: ${e instanceof Error ? oneLine(e.message) : String(e)}`);
  }
  const answer: Record<string, string> = {};
  for (const registry of settings.registries) answer[registry] = username;
  return ok(`${JSON.stringify(answer)}\n`);
}

function failure(e: unknown, debug: Debug): HelperResult {
  if (e instanceof NotFoundError) return { stdout: `${CREDENTIALS_NOT_FOUND}\n`, exitCode: 1 };
  if (e instanceof HelperError) {
    debug(`failed: ${e.code}`);
    return { stdout: `tollgate: ${oneLine(e.message)}\n`, exitCode: 1 };
  }
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof Error && e.stack) debug(oneLine(e.stack));
  return { stdout: `tollgate: unexpected error: ${oneLine(message)}\n`, exitCode: 1 };
}

export async function runHelper(args: string[], stdin: string, env: NodeJS.ProcessEnv, options: HelperOptions = {}): Promise<HelperResult> {
  const write = options.stderr ?? ((text: string) => void process.stderr.write(text));
  const debug = createDebug(env, write);
  const ctx: Context = { env, debug, now: options.now ?? Date.now, options };
  const action = args[0];
  if (args.length !== 1 || !isAction(action)) {
    return { stdout: USAGE, exitCode: 1 };
  }
  debug(`${action} (pid ${process.pid})`);
  try {
    switch (action) {
      case 'get':
        return await get(stdin, ctx);
      case 'store':
        // Tollgate credentials are minted by the gateway on demand; there is nothing to keep.
        checkStdinSize(stdin);
        return ok();
      case 'erase':
        return await erase(stdin, ctx);
      case 'list':
        return await list(ctx);
      case 'version':
        return ok(`${HELPER_NAME} ${packageVersion()}\n`);
    }
  } catch (e) {
    return failure(e, debug);
  }
}
