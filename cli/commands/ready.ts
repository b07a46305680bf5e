import https from 'node:https';
import type { Config } from '../../shared/config.js';
import type { Command } from '../command.js';
import { usageError } from '../failure.js';

/**
 * `tollgate ready`: asks the services of this host for their readiness, on their listeners (not
 * their public URLs, which a container may not resolve). What container health checks and
 * service managers run.
 */

const SERVICES = ['gateway', 'admin', 'authsvc'] as const;
type Service = (typeof SERVICES)[number];
const TIMEOUT_MS = 5_000;

function local(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

interface Answer {
  service: Service;
  ready: boolean;
  status: number | null;
  body: unknown;
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text.slice(0, 200);
  }
}

function askGateway(config: Config): Promise<Answer> {
  const { host, port } = config.gateway.listen;
  return new Promise((resolve) => {
    // Our own listener on this host: liveness of the TLS endpoint, not the device trust, is asked.
    const req = https.get({ host: local(host).replace(/^\[|\]$/g, ''), port, path: '/readyz', rejectUnauthorized: false, timeout: TIMEOUT_MS }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ service: 'gateway', ready: res.statusCode === 200, status: res.statusCode ?? null, body: parse(text) }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolve({ service: 'gateway', ready: false, status: null, body: e.message }));
  });
}

async function askHttp(service: Service, host: string, port: number): Promise<Answer> {
  try {
    const res = await fetch(`http://${local(host)}:${port}/readyz`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    return { service, ready: res.status === 200, status: res.status, body: parse(await res.text()) };
  } catch (e) {
    return { service, ready: false, status: null, body: (e as Error).message };
  }
}

function ask(config: Config, service: Service): Promise<Answer> {
  if (service === 'gateway') return askGateway(config);
  const { host, port } = service === 'admin' ? config.admin.listen : config.authsvc.listen;
  return askHttp(service, host, port);
}

export const readyCommand: Command = {
  name: ['ready'],
  args: [],
  variadic: true,
  usage: '[gateway] [admin] [authsvc]',
  summary: "ask this host's services whether they are ready (exit 0) or not (exit 1): for health checks",
  details: 'Without names: the gateway and the admin API (what `serve gateway` runs). `tollgate ready authsvc` for the realm.',
  mode: 'standalone',
  async run(ctx, input) {
    const asked = input.rest ?? [];
    for (const name of asked) {
      if (!(SERVICES as readonly string[]).includes(name)) throw usageError('service_unknown', `"${name.slice(0, 40)}" is not a service: ${SERVICES.join(', ')}`);
    }
    const services = (asked.length > 0 ? asked : ['gateway', 'admin']) as Service[];
    const config = ctx.config();
    const answers = await Promise.all(services.map((s) => ask(config, s)));
    ctx.print(answers, () => answers.map((a) => `${a.ready ? 'ready' : 'NOT READY'}  ${a.service}  ${a.status ?? '-'}  ${JSON.stringify(a.body)}`).join('\n'));
    return answers.every((a) => a.ready) ? 0 : 1;
  },
};
