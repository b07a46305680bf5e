import type { Logger } from '../shared/log.js';

/** How long a graceful stop may take before the process gives up on stragglers. */
const STOP_DEADLINE_MS = 20_000;

/**
 * Resolves with the exit code once a SIGTERM or SIGINT (or, for a child of `tollgate up`, the loss
 * of its parent; or `stopWhen`, resolving to why) has stopped the service with `stop`. Repeated signals are ignored while stopping:
 * a Ctrl-C reaches both `up` and its children, and `up` forwards it as well.
 */
export function untilStopped(log: Logger, stop: () => Promise<void>, stopWhen?: Promise<string>): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const handler = (why: string) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: why }, 'shutting down');
      const deadline = setTimeout(() => {
        log.error({ afterMs: STOP_DEADLINE_MS }, 'graceful shutdown did not finish; exiting');
        process.exit(1);
      }, STOP_DEADLINE_MS);
      deadline.unref();
      const finish = (code: number) => {
        clearTimeout(deadline);
        if (process.connected) process.disconnect();
        // Stopped is stopped: a handle some library left open must not keep the process alive.
        setTimeout(() => process.exit(code), 2000).unref();
        resolve(code);
      };
      stop().then(
        () => {
          log.info('stopped');
          finish(0);
        },
        (e: unknown) => {
          log.error({ err: e }, 'shutdown failed');
          finish(1);
        },
      );
    };
    // Listeners stay installed, so later signals do not fall back to the default (immediate exit).
    process.on('SIGTERM', () => handler('SIGTERM'));
    process.on('SIGINT', () => handler('SIGINT'));
    // Something else this process runs beside the service has ended (`tollgate up`'s realm).
    void stopWhen?.then(handler);
    // A child of `tollgate up` has an IPC channel: when the parent goes, so does the child. The
    // channel itself must not keep the process alive once the servers are closed.
    if (process.channel) {
      process.channel.unref();
      process.once('disconnect', () => handler('parent-exited'));
    }
  });
}
