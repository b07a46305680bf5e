import { HelperError } from './errors.js';

/**
 * The docker credential-helper protocol (github.com/docker/docker-credential-helpers), as docker,
 * skopeo and podman speak it: one argument names the action, stdin carries its input, stdout the
 * answer, and errors are a message on stdout with exit code 1.
 */

export const HELPER_NAME = 'docker-credential-tollgate';

export type Action = 'get' | 'store' | 'erase' | 'list' | 'version';
export const ACTIONS: readonly Action[] = ['get', 'store', 'erase', 'list', 'version'];

/** Actions that read stdin; the others must not, since nobody writes to it for them. */
export const READS_STDIN: ReadonlySet<string> = new Set(['get', 'store', 'erase']);

/**
 * The one message clients treat as "no credentials for this server" rather than as a failure:
 * they then pull anonymously. It must be printed exactly like this.
 */
export const CREDENTIALS_NOT_FOUND = 'credentials not found in native keychain';

/** A server URL, or a `store` JSON document, is tiny; anything larger is not protocol input. */
export const MAX_STDIN_BYTES = 64 * 1024;

export const USAGE = `Usage: ${HELPER_NAME} <get|store|erase|list|version>\n`;

/** The `get` answer. */
export interface Credentials {
  ServerURL: string;
  Username: string;
  Secret: string;
}

export class NotFoundError extends HelperError {
  override readonly name = 'NotFoundError';
  constructor() {
    super('credentials_not_found', CREDENTIALS_NOT_FOUND);
  }
}

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
const HOST_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const IPV6_BRACKETED = /^\[[0-9a-f:.]+(?:%[a-z0-9._~-]+)?\]$/;

/**
 * The registry a server URL names, as `host[:port]` in lower case: clients pass
 * `127.0.0.1:5000`, `https://127.0.0.1:5000`, `https://127.0.0.1:5000/v2/` or even a user-info
 * form, and all of them mean the same registry. The port is kept as given (a registry on :443
 * and one without a port are different `credHelpers` keys to docker, too). Returns undefined for
 * text that does not name a host.
 */
export function registryHost(serverUrl: string): string | undefined {
  let rest = serverUrl.trim();
  rest = rest.replace(SCHEME, '');
  const end = rest.search(/[/?#]/);
  if (end >= 0) rest = rest.slice(0, end);
  const at = rest.lastIndexOf('@');
  if (at >= 0) rest = rest.slice(at + 1);
  rest = rest.toLowerCase();
  if (rest.length === 0 || rest.length > 261) return undefined;

  let host = rest;
  let port: string | undefined;
  const portMatch = /^(.*):(\d{1,5})$/.exec(rest);
  if (portMatch && !/^[^[]*:.*:/.test(rest)) {
    host = portMatch[1] as string;
    port = portMatch[2] as string;
    const n = Number(port);
    if (n < 1 || n > 65535) return undefined;
    port = String(n);
  }
  const valid = IPV4.test(host) || IPV6_BRACKETED.test(host) || (host.length <= 253 && host.split('.').every((l) => HOST_LABEL.test(l)));
  if (!valid) return undefined;
  return port === undefined ? host : `${host}:${port}`;
}

export function isAction(value: string | undefined): value is Action {
  return value !== undefined && (ACTIONS as readonly string[]).includes(value);
}
