/**
 * The helper's refusals. Every one carries a message a device operator can act on; the runner
 * prints it as one `tollgate: ...` line on stdout, which is where the credential-helper protocol
 * puts errors. Nothing here ever includes a secret.
 */
export class HelperError extends Error {
  override readonly name: string = 'HelperError';
  constructor(
    /** Stable, snake_case: tests and callers match on it, never on the message. */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The device config or one of the files it names is missing, unreadable or invalid. */
export class DeviceConfigError extends HelperError {
  override readonly name = 'DeviceConfigError';
}

/**
 * The gateway could not be reached, was not trusted, or refused. `code` is the gateway's own error
 * code when it answered with one (device_revoked, certificate_expired, ...), otherwise one of the
 * helper's: gateway_unreachable, gateway_timeout, gateway_untrusted, tls_handshake_failed,
 * bad_response, http_error, rate_limited.
 */
export class GatewayError extends HelperError {
  override readonly name = 'GatewayError';
  constructor(
    code: string,
    message: string,
    /** HTTP status when the gateway answered at all. */
    readonly status?: number,
    /** Seconds, from a Retry-After header. */
    readonly retryAfter?: number,
  ) {
    super(code, message);
  }
}

/** One line, whatever the source text holds: the protocol reads stdout as a single message. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}
