// A `mailer worker` in this test's own process, on the test's database and a local SES endpoint:
// the same startWorker the CLI runs, unpaced unless told otherwise, without the crontab, stopped
// when the test ends.
import type { ExecutionContext } from 'ava';
import { type Config, loadConfig } from '../../src/config.ts';
import { createPool } from '../../src/db/pool.ts';
import { createSesClient } from '../../src/ses/client.ts';
import { newProcessId, startWorker, type WorkerHandle } from '../../src/worker/runner.ts';
import { PUBLIC_URL, testLogger } from '../http/helpers.ts';

/**
 * Starts the worker on `databaseUrl`, sending through `sesUrl`. Its teardown stops the worker,
 * ends its pool and destroys its SES client; what the test started before (the endpoint, an HTTP
 * server) closes after that, as ava runs teardowns last registered first. Returns the worker's
 * config.
 */
export async function startWorkerInProcess(
  t: ExecutionContext,
  databaseUrl: string,
  sesUrl: string,
): Promise<Config> {
  return (await startWorkerWith(t, databaseUrl, sesUrl)).config;
}

/** startWorkerInProcess with more environment (paced, say); returns the handle and its id too. */
export async function startWorkerWith(
  t: ExecutionContext,
  databaseUrl: string,
  sesUrl: string,
  env: Record<string, string> = {},
): Promise<{ config: Config; worker: WorkerHandle; processId: string }> {
  const config = loadConfig({ SES_MAX_SEND_RATE: '0', PUBLIC_URL, SES_ENDPOINT: sesUrl, ...env });
  const client = createSesClient(config, sesUrl);
  const processId = newProcessId();
  const pool = createPool(databaseUrl, testLogger, { applicationName: processId });
  const worker = await startWorker({
    config,
    logger: testLogger,
    pool,
    processId,
    ses: client,
    crontab: false,
  });
  t.teardown(async () => {
    await worker.stop();
    await pool.end();
    client.destroy();
  });
  return { config, worker, processId };
}
