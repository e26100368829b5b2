// What one SendEmail costs the sending process in CPU, by client: the project's SESv2 client
// (src/ses/client.ts), the SDK's client with its defaults (same endpoint, agent and one attempt),
// and a bare node:http POST of the same JSON body (the floor: no signing, no middleware). Each
// runs at concurrency 16 against the local SES endpoint in its own process, in interleaved rounds
// so that a noisy minute hits all three alike; the median round is reported.
// No database. The figure behind figure 1's ratio: the SDK is the part of a send a realistic job
// does not have.
import http from 'node:http';
import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { loadConfig } from '../src/config.ts';
import { createSesClient } from '../src/ses/client.ts';
import { buildSendEmailInput } from '../src/ses/message.ts';
import { emit, quick } from './lib.ts';
import { round } from './support/sampling.ts';
import { startSesProcess } from './support/ses-process.ts';

const CONCURRENCY = 16;
const callsPerRound = quick ? 2_000 : 5_000;
const rounds = quick ? 3 : 5;

const config = loadConfig();
const ses = await startSesProcess();
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const tuned = createSesClient(config, ses.url);
const sdkDefaults = new SESv2Client({
  // The project's client takes this region for a local endpoint when none is set; so does this one.
  region: config.ses.region ?? 'us-east-1',
  endpoint: ses.url,
  maxAttempts: 1,
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  requestHandler: { httpAgent: agent },
});

function input(n: number) {
  return buildSendEmailInput({
    from: 'news@example.com',
    to: `reader${n}@example.com`,
    campaignId: '7f3c1a52-2d7e-4b3a-9f59-1d2c3b4a5e6f',
    customerId: '0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f',
    unsubscribeUrl: 'https://mail.example.com/u/Zm9vYmFyYmF6cXV4',
    configurationSet: 'campaigns',
    content: {
      kind: 'internal',
      rendered: {
        subject: 'This week at Example',
        html: '<p>Hello <b>reader</b>, here is what is new this week.</p>'.repeat(12),
        text: 'Hello reader, here is what is new this week. '.repeat(12),
      },
    },
  });
}

function postBare(body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${ses.url}/v2/email/outbound-emails`,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (response) => {
        response.resume();
        response.on('end', resolve);
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

const clients: Record<string, (n: number) => Promise<unknown>> = {
  bare_http: (n) => postBare(JSON.stringify(input(n))),
  sdk_defaults: (n) => sdkDefaults.send(new SendEmailCommand(input(n))),
  project_client: (n) => tuned.send(new SendEmailCommand(input(n))),
};

async function runRound(call: (n: number) => Promise<unknown>, calls: number) {
  let next = 0;
  const lane = async () => {
    while (next < calls) await call(next++);
  };
  const cpu = process.cpuUsage();
  const start = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, lane));
  const used = process.cpuUsage(cpu);
  return {
    cpuUs: (used.user + used.system) / calls,
    perSecond: calls / ((performance.now() - start) / 1000),
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] ?? 0;

try {
  for (const call of Object.values(clients)) await runRound(call, 500); // warm up
  const samples: Record<string, { cpuUs: number[]; perSecond: number[] }> = {};
  for (let r = 0; r < rounds; r++) {
    for (const [name, call] of Object.entries(clients)) {
      const result = await runRound(call, callsPerRound);
      samples[name] ??= { cpuUs: [], perSecond: [] };
      samples[name].cpuUs.push(result.cpuUs);
      samples[name].perSecond.push(result.perSecond);
    }
  }
  const cpu = (name: string) => median(samples[name]?.cpuUs ?? []);
  emit({
    bench: 'ses_client',
    concurrency: CONCURRENCY,
    calls_per_round: callsPerRound,
    rounds,
    cpu_us_per_call: Object.fromEntries(Object.keys(clients).map((n) => [n, round(cpu(n))])),
    calls_per_second: Object.fromEntries(
      Object.entries(samples).map(([n, s]) => [n, round(median(s.perSecond))]),
    ),
    sdk_over_bare_us: round(cpu('sdk_defaults') - cpu('bare_http')),
    project_over_bare_us: round(cpu('project_client') - cpu('bare_http')),
    project_saving_vs_defaults: round(1 - cpu('project_client') / cpu('sdk_defaults'), 2),
  });
} finally {
  tuned.destroy();
  sdkDefaults.destroy();
  agent.destroy();
  await ses.close();
}
