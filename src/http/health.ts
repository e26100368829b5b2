// GET /healthz for load balancers and orchestrators: 200 while the database answers, 503 otherwise.
import type { FastifyInstance } from 'fastify';
import type pg from 'pg';
import { allowOnly } from './app.ts';
import { sendJson } from './io.ts';

// A probe must answer quickly even when the database host is unreachable (no TCP reset, just
// silence): the pool would wait for its connection forever.
const PROBE_TIMEOUT_MS = 2_000;

async function databaseAnswers(pool: pg.Pool): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([
      pool.query('select 1').then(
        () => true,
        () => false,
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** GET (and HEAD) /healthz on `app`. */
export function registerHealth(app: FastifyInstance, pool: pg.Pool): void {
  app.get('/healthz', async (_request, reply) => {
    const ok = await databaseAnswers(pool);
    return sendJson(reply, ok ? 200 : 503, {
      status: ok ? 'ok' : 'unavailable',
      database: ok ? 'ok' : 'unreachable',
    });
  });
  allowOnly(app, '/healthz', ['GET', 'HEAD']);
}
