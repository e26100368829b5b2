// The HTTP baseline: a bare node:http server in its own process that reads each request body and
// answers 200, so the webhook's figure can be divided by what node:http alone manages here.
// Forked with an IPC channel; sends {port} once listening.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    Buffer.concat(chunks).toString('utf8');
    res.writeHead(200, { 'content-type': 'text/plain' }).end('accepted');
  });
});
server.keepAliveTimeout = 65_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: (server.address() as AddressInfo).port });
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
