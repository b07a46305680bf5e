import https from 'node:https';

/** What the gateway answered a device: the status, and the error code of a refusal. */
export interface DeviceAnswer {
  status: number;
  code: string | undefined;
}

/** One GET to the gateway as a device (its key and certificate), on a connection of its own. */
export function deviceGet(gateway: { port: number; caPem: string }, path: string, creds: { key: string; cert: string }): Promise<DeviceAnswer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: gateway.port, path, ca: gateway.caPem, servername: 'localhost', key: creds.key, cert: creds.cert, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(text) as { error?: { code: string } }).error?.code }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}
