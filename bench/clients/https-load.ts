/**
 * Mutual-TLS load generator, run as a child process on the load core: `concurrency` loops each
 * sending GET requests back to back for `durationMs`. With keepAlive false every request is a new
 * TCP connection and a full TLS handshake with the client certificate (no session resumption),
 * which is what a device calling the credential helper costs; with keepAlive true each loop keeps
 * one connection and reconnects only when the server closes it.
 *
 * It speaks HTTP/1.1 over node:tls itself instead of going through node:https: the https client's
 * agent, request and response objects cost more CPU per request than a keep-alive server answering
 * a constant, and a benchmark whose client is the bottleneck measures the client. It reports its
 * own CPU use, so every figure can show that it was not.
 *
 *   node https-load.js <json spec file>      -> sends a LoadResult over IPC
 */
import { readFileSync } from 'node:fs';
import { connect, createSecureContext, type SecureContext, type TLSSocket } from 'node:tls';

export interface LoadSpec {
  port: number;
  path: string;
  concurrency: number;
  durationMs: number;
  keepAlive: boolean;
  ca: string;
  cert: string;
  key: string;
}

export interface LoadResult {
  requests: number;
  errors: number;
  firstError: string | null;
  seconds: number;
  /** Fraction of one core this process used while sending. */
  cpu: number;
  /** Connections opened (keep-alive: how often the server closed one). */
  connections: number;
  /** Per-request latencies, sampled (at most ~200k kept) to bound the IPC message. */
  latenciesMs: number[];
}

const HEADER_END = Buffer.from('\r\n\r\n');

interface Answer {
  status: number;
  /** The server announced it closes the connection after this answer. */
  close: boolean;
}

/**
 * One HTTP/1.1 connection over TLS on which requests go one at a time. Answers must carry a
 * Content-Length (Tollgate's and the ceilings' all do); anything else is an error, not a guess.
 */
class Connection {
  private buffer: Buffer = Buffer.alloc(0);
  private waiting: { resolve: (a: Answer) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  readonly ready: Promise<void>;

  constructor(
    private readonly socket: TLSSocket,
    private readonly request: Buffer,
  ) {
    this.ready = new Promise((resolve, reject) => {
      socket.once('secureConnect', () => resolve());
      socket.once('error', reject);
    });
    socket.on('data', (chunk: Buffer) => {
      this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
      this.parse();
    });
    const fail = (e: Error) => {
      this.failure ??= e;
      const w = this.waiting;
      this.waiting = null;
      w?.reject(e);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed by the server')));
  }

  send(): Promise<Answer> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.socket.write(this.request);
    });
  }

  private parse(): void {
    const end = this.buffer.indexOf(HEADER_END);
    if (end < 0 || !this.waiting) return;
    const head = this.buffer.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
    if (!length?.[1]) {
      this.socket.destroy(new Error(`answer without Content-Length (HTTP ${status})`));
      return;
    }
    const total = end + HEADER_END.length + Number(length[1]);
    if (this.buffer.length < total) return;
    this.buffer = this.buffer.subarray(total);
    const w = this.waiting;
    this.waiting = null;
    w.resolve({ status, close: /\r\nconnection:\s*close/i.test(head) });
  }

  close(): void {
    this.socket.destroy();
  }
}

async function main(): Promise<void> {
  const specFile = process.argv[2];
  if (!specFile) throw new Error('usage: https-load.js <spec.json>');
  const spec = JSON.parse(readFileSync(specFile, 'utf8')) as LoadSpec;
  // Built once: a context per connection would parse the PEMs every time and make the client,
  // not the server, what is measured.
  const secureContext: SecureContext = createSecureContext({ ca: spec.ca, cert: spec.cert, key: spec.key });
  const request = Buffer.from(
    `GET ${spec.path} HTTP/1.1\r\nHost: localhost:${spec.port}\r\n${spec.keepAlive ? '' : 'Connection: close\r\n'}\r\n`,
  );
  let connections = 0;
  const open = async (): Promise<Connection> => {
    connections++;
    // No session given, so none is resumed: every connection is a full handshake.
    const socket = connect({ host: '127.0.0.1', port: spec.port, servername: 'localhost', secureContext });
    socket.setNoDelay(true);
    const c = new Connection(socket, request);
    await c.ready;
    return c;
  };

  let requests = 0;
  let errors = 0;
  let firstError: string | null = null;
  const latencies: number[] = [];
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + spec.durationMs;
  const loop = async () => {
    let conn: Connection | null = null;
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        conn ??= await open();
        const answer = await conn.send();
        if (answer.close || !spec.keepAlive) {
          conn.close();
          conn = null;
        }
        if (answer.status !== 200) throw new Error(`HTTP ${answer.status}`);
        requests++;
        if (latencies.length < 200_000) latencies.push(performance.now() - t0);
      } catch (e) {
        conn?.close();
        conn = null;
        errors++;
        firstError ??= e instanceof Error ? e.message : String(e);
      }
    }
    conn?.close();
  };
  await Promise.all(Array.from({ length: spec.concurrency }, loop));
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu0);
  const result: LoadResult = {
    requests,
    errors,
    firstError,
    seconds,
    cpu: Math.round(((used.user + used.system) / 1e6 / seconds) * 100) / 100,
    connections,
    latenciesMs: latencies,
  };
  process.send?.(result, () => process.exit(0));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
