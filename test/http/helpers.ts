// The public HTTP server (createPublicServer) on a free port for one test file, injectable parts.
import type { Server } from 'node:http';
import pg from 'pg';
import { loadConfig } from '../../src/config.ts';
import { createPublicServer, type HttpDeps } from '../../src/http/server.ts';
import { createLogger } from '../../src/logger.ts';

export const PUBLIC_URL = 'https://mail.example.com';

export const testLogger = createLogger({
  level: process.env.MAILER_TEST_LOG_LEVEL ?? 'silent',
  pretty: false,
});

export interface RunningServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function startServer(
  pool: pg.Pool,
  env: Record<string, string> = {},
  deps: Partial<HttpDeps> = {},
): Promise<RunningServer> {
  const config = loadConfig({ PUBLIC_URL, ...env });
  const listener = await createPublicServer({ pool, config, logger: testLogger, ...deps });
  const url = await listener.listen(0, '127.0.0.1');
  return { url, server: listener.server, close: () => listener.close(1_000) };
}

/** A pool whose database is down (nothing listens on port 1): every query fails at once. */
export function deadPool(): pg.Pool {
  const pool = new pg.Pool({
    connectionString: 'postgres://postgres@127.0.0.1:1/none',
    connectionTimeoutMillis: 1_000,
  });
  pool.on('error', () => undefined);
  return pool;
}
