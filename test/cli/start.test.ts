import test from 'ava';
import { freePort } from '../../src/free-port.ts';
import { startLocalSes } from '../../src/ses-local/server.ts';
import { startCli, waitFor } from '../helpers/cli.ts';
import { createEmptyDatabase } from '../helpers/db.ts';
import { createCustomer, createTemplate } from '../helpers/factories.ts';

test('mailer start migrates an empty database, serves /healthz, works jobs and stops on SIGTERM', async (t) => {
  const db = await createEmptyDatabase();
  const ses = await startLocalSes();
  t.teardown(async () => {
    await ses.close();
    await db.drop();
  });
  const port = await freePort();
  const app = startCli(['start'], {
    DATABASE_URL: db.url,
    SES_ENDPOINT: ses.url,
    SES_MAX_SEND_RATE: '0',
    PORT: String(port),
  });
  t.teardown(() => {
    app.child.kill('SIGKILL');
  });

  const health = await waitFor(
    async () => {
      const response = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
      return response?.status === 200 ? response : undefined;
    },
    { what: '/healthz', timeoutMs: 30_000 },
  ).catch((error) => {
    t.log(app.output());
    throw error;
  });
  t.is(health.status, 200);

  await createTemplate(db.pool, {
    week_of_month: 3,
    subject: 'Hi {{name}}',
    html: null,
    text: 'Hello',
  });
  await createCustomer(db.pool, { email: 'one@example.com', name: 'One' });
  await createCustomer(db.pool, { email: 'two@example.com', name: 'Two' });
  await db.pool.query(
    `select graphile_worker.add_job('generate_campaign',
       json_build_object('week_of_month', 3, 'generated_date', '2026-11-16'))`,
  );
  await waitFor(async () => ses.sent().length === 2, { what: 'two emails sent' });

  app.child.kill('SIGTERM');
  t.deepEqual(await app.exited, { code: 0, signal: null }, app.output());
});
