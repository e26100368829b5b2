import { createServer } from 'node:net';

// A TCP port nobody listens on right now (the OS picks it), for servers that must know their port
// before they start (the demo's PUBLIC_URL, tests' own PostgreSQL).
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (!address || typeof address === 'string') throw new Error('no free port');
  return address.port;
}
