/**
 * The least a server process can be: node:http (or node:https with the gateway's certificate)
 * answering a constant on one port. The ceiling of start-up time and of idle memory.
 *
 *   node bare-listen.js <port> [<cert.pem> <key.pem>]
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttp } from 'node:http';
import { createServer as createHttps } from 'node:https';

const [port, certFile, keyFile] = process.argv.slice(2);
const answer = (_req: unknown, res: import('node:http').ServerResponse) => {
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': 2 });
  res.end('{}');
};
const server =
  certFile && keyFile ? createHttps({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, answer) : createHttp(answer);
server.listen(Number(port), '127.0.0.1');
process.once('SIGTERM', () => server.close(() => process.exit(0)));
process.once('SIGINT', () => server.close(() => process.exit(0)));
