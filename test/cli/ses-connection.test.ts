// Aiming mailer at a real SES account: no silent fallback to the local SES, the AWS SDK's own
// chains for credentials, region and endpoints, and placeholder credentials never sent anywhere
// but a loopback endpoint.
import { networkInterfaces } from 'node:os';
import test from 'ava';
import { startLocalSes } from '../../src/ses-local/server.ts';
import { runCli, startCli, waitFor } from '../helpers/cli.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { createCustomer, createTemplate } from '../helpers/factories.ts';

// Nothing the SDK's credential chain could find: no variables, no files, no instance metadata.
const NO_AWS = {
  SES_ENDPOINT: '',
  AWS_ACCESS_KEY_ID: '',
  AWS_SECRET_ACCESS_KEY: '',
  AWS_SESSION_TOKEN: '',
  AWS_PROFILE: '',
  AWS_CONFIG_FILE: '/nonexistent/aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
  AWS_WEB_IDENTITY_TOKEN_FILE: '',
  AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: '',
  AWS_CONTAINER_CREDENTIALS_FULL_URI: '',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_ENDPOINT_URL: '',
  AWS_ENDPOINT_URL_SESV2: '',
  AWS_REGION: 'eu-west-1',
  PUBLIC_URL: 'https://mail.example.test',
  SES_MAX_SEND_RATE: '0',
};

// A queued campaign of three recipients whose jobs are waiting.
async function queuedCampaign(db: TestDatabase): Promise<string> {
  await createTemplate(db.pool, { week_of_month: 1 });
  for (let i = 0; i < 3; i++) await createCustomer(db.pool);
  const { rows } = await db.pool.query<{ campaign_id: string }>(
    `select public.generate_campaign(1, '2026-11-02', true, interval '90 days',
                                     'https://mail.example.test') as campaign_id`,
  );
  return rows[0]?.campaign_id ?? '';
}

async function untouched(t: import('ava').ExecutionContext, db: TestDatabase, campaignId: string) {
  const { rows } = await db.pool.query(
    `select c.status, count(*) filter (where r.recipient_status = 'pending')::int as pending,
            sum(r.attempt_count)::int as attempts
       from campaigns c join campaign_recipients r using (campaign_id)
      where campaign_id = $1 group by c.status`,
    [campaignId],
  );
  t.deepEqual(rows[0], { status: 'queued', pending: 3, attempts: 0 });
  const jobs = await db.pool.query(
    `select 1 from graphile_worker.jobs where task_identifier = 'send_recipient' and attempts = 0`,
  );
  t.is(jobs.rowCount, 3, 'the send jobs are still waiting, untried');
}

for (const command of ['worker', 'start'] as const) {
  test(`without AWS credentials \`mailer ${command}\` exits 2 naming what it tried and touches no recipient`, async (t) => {
    const db = await createTestDatabase();
    t.teardown(() => db.drop());
    const campaignId = await queuedCampaign(db);

    const result = await runCli([command], { DATABASE_URL: db.url, ...NO_AWS, PORT: '0' });
    t.is(result.code, 2, result.stderr);
    // One line from mailer itself (the supervisor's JSON log lines around it aside).
    const lines = result.stderr.split('\n').filter((line) => line.startsWith('mailer: '));
    t.is(lines.length, 1, result.stderr);
    const last = lines[0] ?? '';
    t.regex(
      last,
      /^mailer: no AWS credentials for SES in eu-west-1: tried the AWS SDK default chain/,
    );
    t.regex(last, /instance metadata/);
    t.regex(last, /SES_ENDPOINT=local/);
    await untouched(t, db, campaignId);
  });
}

test('without a region `mailer worker` exits 2 saying where a region comes from', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const campaignId = await queuedCampaign(db);
  const result = await runCli(['worker', '--no-supervise'], {
    DATABASE_URL: db.url,
    ...NO_AWS,
    AWS_REGION: '',
    AWS_ACCESS_KEY_ID: 'AKIACHAINTEST',
    AWS_SECRET_ACCESS_KEY: 'chain-secret',
  });
  t.is(result.code, 2, result.stderr);
  t.regex(
    result.stderr,
    /mailer: no AWS region for SES: set AWS_REGION or a region in the AWS profile/,
  );
  await untouched(t, db, campaignId);
});

test('a localhost PUBLIC_URL is refused at generation when the send goes to real SES', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  await createTemplate(db.pool, { week_of_month: 1 });
  await createCustomer(db.pool);
  const refused = await runCli(['campaign', 'generate', '--week', '1'], {
    DATABASE_URL: db.url,
    ...NO_AWS,
    PUBLIC_URL: 'http://localhost:3000',
  });
  t.is(refused.code, 2, refused.stderr);
  t.regex(
    refused.stderr,
    /PUBLIC_URL is http:\/\/localhost:3000, but this campaign would be sent through real SES/,
  );
  t.regex(refused.stderr, /or SES_ENDPOINT for this command too/, 'names the local SES way out');
  t.is((await db.pool.query('select 1 from campaigns')).rowCount, 0, 'nothing generated');

  const local = await runCli(['campaign', 'generate', '--week', '1', '--no-send'], {
    DATABASE_URL: db.url,
    ...NO_AWS,
    SES_ENDPOINT: 'local',
    PUBLIC_URL: 'http://localhost:3000',
  });
  t.is(local.code, 0, local.stderr);
});

// The machine's own non-loopback address, so that the endpoint is not taken for a local SES.
function externalAddress(): string | undefined {
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

for (const variable of ['AWS_ENDPOINT_URL_SESV2', 'SES_ENDPOINT'] as const) {
  test(`${variable} on a non-local endpoint: sent there, signed with the chain's credentials, not placeholders`, async (t) => {
    const address = externalAddress();
    if (!address) return t.fail('this test needs a non-loopback IPv4 address on the machine');
    const ses = await startLocalSes({ host: '0.0.0.0' });
    const db = await createTestDatabase();
    t.teardown(async () => {
      await ses.close();
      await db.drop();
    });
    const campaignId = await queuedCampaign(db);
    const worker = startCli(['worker', '--no-supervise'], {
      DATABASE_URL: db.url,
      ...NO_AWS,
      [variable]: `http://${address}:${ses.port}`,
      AWS_ACCESS_KEY_ID: 'AKIACHAINTEST',
      AWS_SECRET_ACCESS_KEY: 'chain-secret',
      LOG_LEVEL: 'info',
    });
    t.teardown(() => {
      worker.child.kill('SIGKILL');
    });
    await waitFor(async () => ses.sent().length === 3, { what: 'three emails sent' }).catch(
      (error) => {
        t.log(worker.output());
        throw error;
      },
    );
    t.deepEqual(
      ses.sent().map((m) => m.accessKeyId),
      ['AKIACHAINTEST', 'AKIACHAINTEST', 'AKIACHAINTEST'],
    );
    t.regex(worker.output(), /SES: Amazon SES \(endpoint from /);
    await waitFor(
      async () =>
        (
          await db.pool.query(
            `select 1 from campaigns where campaign_id = $1 and status = 'done'`,
            [campaignId],
          )
        ).rowCount === 1,
      { what: 'campaign done' },
    );
  });
}

test('real SES that cannot send stops `mailer worker` at start-up with exit 2, before any job', async (t) => {
  const address = externalAddress();
  if (!address) return t.fail('this test needs a non-loopback IPv4 address on the machine');
  const ses = await startLocalSes({ host: '0.0.0.0', faults: { sendingPaused: true } });
  const db = await createTestDatabase();
  t.teardown(async () => {
    await ses.close();
    await db.drop();
  });
  const campaignId = await queuedCampaign(db);
  const result = await runCli(['worker'], {
    DATABASE_URL: db.url,
    ...NO_AWS,
    AWS_ENDPOINT_URL_SESV2: `http://${address}:${ses.port}`,
    AWS_ACCESS_KEY_ID: 'AKIACHAINTEST',
    AWS_SECRET_ACCESS_KEY: 'chain-secret',
  });
  t.is(result.code, 2, result.stderr);
  t.regex(result.stderr, /SES check: cannot send/);
  t.regex(result.stderr, /mailer: SES cannot send for this account/);
  t.is(ses.sendCallCount(), 0);
  await untouched(t, db, campaignId);
});
