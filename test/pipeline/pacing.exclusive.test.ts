// Pacing's correctness property: no one-second window holds more than R sends. The mean rate is
// a performance figure (a busy machine lowers it without anything being wrong): the test logs it,
// and bench/pacing.ts measures it (ratio_mean_to_rate).
import { SendEmailCommand } from '@aws-sdk/client-sesv2';
import test from 'ava';
import { createSesClient, simpleEmail } from '../ses-local/helpers.ts';
import { generate, seedCustomers, startPipeline, waitForDone } from './harness.ts';

test('pacing at R/s across 3 workers: no one-second window above R', async (t) => {
  const rate = 100;
  const p = await startPipeline(t, {
    ses: { maxSendRate: rate },
    env: { SES_MAX_SEND_RATE: String(rate) },
  });
  await seedCustomers(p.db, { active: 1500 });
  // The local SES answers its first SendEmail slowly (its code not compiled yet), and the
  // requests arriving meanwhile are timed together when it gets to them: a real SES is warm.
  const client = createSesClient(p.ses.url);
  await client.send(new SendEmailCommand(simpleEmail(['warm-up@example.com'])));
  client.destroy();
  await Promise.all([p.startWorker(), p.startWorker(), p.startWorker()]);
  const campaignId = await generate(p.db);
  await waitForDone(p.db, campaignId, 60_000);

  const times = p.ses
    .sent()
    .filter((m) => m.to[0] !== 'warm-up@example.com')
    .map((m) => m.acceptedAt)
    .sort((a, b) => a - b);
  t.is(times.length, 1500);
  let worst = 0;
  let end = 0;
  for (let start = 0; start < times.length; start++) {
    while (end < times.length && (times[end] as number) < (times[start] as number) + 1000) end++;
    worst = Math.max(worst, end - start);
  }
  const seconds = ((times.at(-1) as number) - (times[0] as number)) / 1000;
  const mean = (times.length - 1) / seconds;
  t.log(
    `busiest one-second window: ${worst}; mean ${mean.toFixed(1)}/s over ${seconds.toFixed(1)} s`,
  );
  const perSecond = new Map<number, number>();
  for (const at of times) {
    const s = Math.floor((at - (times[0] as number)) / 1000);
    perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
  }
  t.log(`per second: ${[...perSecond.values()].join(' ')}`);
  t.true(worst <= rate, `busiest window ${worst} > ${rate}`);
  t.is(p.ses.sendCallCount(), 1 + 1500, 'SES never had to answer 429');
});
