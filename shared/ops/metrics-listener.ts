import { createServer, type Server } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { closeGracefully, hardenServer, isLoopback, listen } from '../http/server.js';
import type { Logger } from '../log.js';

/**
 * `GET /metrics` on a listener of its own, one per service process: never on the device port
 * (where every client is a device to identify) nor on the realm (which registries and clients
 * reach). Loopback by default; a scraper elsewhere needs `metrics.listen.host` opened on purpose.
 */

let processRegistry: Registry | undefined;

/** Node's process metrics (CPU, memory, heap, event-loop lag, GC, handles), collected once per process. */
export function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export interface MetricsListenerOptions {
  host: string;
  port: number;
  /** The service's registries; the process metrics are added to them. */
  registries: readonly Registry[];
  log: Logger;
}

export interface RunningMetricsListener {
  server: Server;
  port: number;
  close(): Promise<void>;
}

export async function startMetricsListener({ host, port, registries, log }: MetricsListenerOptions): Promise<RunningMetricsListener> {
  const all = [...registries, processMetrics()];
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: { code: 'route_not_found', message: 'only GET /metrics is served here' } }));
      return;
    }
    Promise.all(all.map((r) => r.metrics())).then(
      (parts) => {
        res.writeHead(200, { 'Content-Type': all[0]!.contentType, 'Cache-Control': 'no-store' }).end(req.method === 'HEAD' ? undefined : parts.join(''));
      },
      (e: unknown) => {
        log.error({ err: e }, 'metrics could not be collected');
        res.writeHead(500, { 'Content-Type': 'application/json' }).end(JSON.stringify({ error: { code: 'metrics_failed', message: 'metrics could not be collected' } }));
      },
    );
  });
  hardenServer(server);
  if (!isLoopback(host)) log.warn({ host }, 'metrics listen beyond loopback: they name factories, CAs and signing keys; restrict who can reach them');
  const bound = await listen(server, port, host);
  log.info({ host, port: bound }, 'metrics listening (HTTP, GET /metrics)');
  return { server, port: bound, close: () => closeGracefully(server, 2_000) };
}
