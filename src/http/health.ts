// GET /healthz for load balancers and orchestrators: 200 while the database answers, 503 otherwise.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type pg from 'pg';
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

export function createHealthHandler(pool: pg.Pool) {
  return async function handleHealth(_req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ok = await databaseAnswers(pool);
    sendJson(res, ok ? 200 : 503, {
      status: ok ? 'ok' : 'unavailable',
      database: ok ? 'ok' : 'unreachable',
    });
  };
}
