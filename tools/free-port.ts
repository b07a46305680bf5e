import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/** Where the search starts: above the well-known and most registered service ports. */
const LOWEST = 10_000;

/**
 * The first port of the kernel's ephemeral range (net.ipv4.ip_local_port_range), from which it
 * hands out the local ports of outgoing connections and of listen(0).
 */
function ephemeralStart(): number {
  try {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(start) && start > 0 ? start : 32_768;
  } catch {
    return 32_768;
  }
}

function bindable(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(null));
    s.listen(port, '127.0.0.1', () => {
      const addr = s.address();
      const bound = typeof addr === 'object' && addr ? addr.port : null;
      s.close(() => resolve(bound));
    });
  });
}

/**
 * A port free on loopback right now (bound and released), for a server started a moment later.
 * Chosen at random below the ephemeral range: a port from that range (what listen(0) gives) can be
 * taken by any outgoing connection on the machine between this check and the server's own bind,
 * and a benchmark's load generator opens thousands of them (EADDRINUSE). Where the range leaves no
 * room below it, the OS picks.
 */
export async function freePort(): Promise<number> {
  const end = ephemeralStart();
  if (end - LOWEST >= 1000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = await bindable(LOWEST + Math.floor(Math.random() * (end - LOWEST)));
      if (port !== null) return port;
    }
  }
  const port = await bindable(0);
  if (port === null) throw new Error('no free port on 127.0.0.1');
  return port;
}
