import { readdir, readFile } from 'node:fs/promises';
import test from 'ava';
import { parseCrontab } from 'graphile-worker';
import { tasksDirectory } from '../../src/worker/registry.ts';
import { crontabPath } from '../../src/worker/runner.ts';

async function items() {
  return parseCrontab(await readFile(crontabPath, 'utf8'));
}

// What graphile-worker matches a minute against (UTC).
function digest(iso: string) {
  const d = new Date(iso);
  return {
    min: d.getUTCMinutes(),
    hour: d.getUTCHours(),
    date: d.getUTCDate(),
    month: d.getUTCMonth() + 1,
    dow: d.getUTCDay(),
  };
}

test('the crontab parses and every entry names a task in tasks/', async (t) => {
  const parsed = await items();
  const tasks = (await readdir(tasksDirectory)).map((f) => f.replace(/\.ts$/, ''));
  t.deepEqual(
    parsed.map((i) => i.task),
    [
      'sweep',
      'generate_weekly_campaign',
      'expire_unsubscribe_tokens',
      'retain_email_events',
      'reconcile_in_doubt',
      'prune_sns_messages',
    ],
  );
  for (const item of parsed) t.true(tasks.includes(item.task), item.task);
});

test('backfill is chosen per entry: only the weekly generation catches up (same day)', async (t) => {
  const byTask = Object.fromEntries((await items()).map((i) => [i.task, i.options]));
  t.is(byTask.generate_weekly_campaign?.backfillPeriod, 12 * 3600 * 1000);
  t.is(byTask.generate_weekly_campaign?.maxAttempts, 8);
  for (const task of [
    'sweep',
    'expire_unsubscribe_tokens',
    'retain_email_events',
    'reconcile_in_doubt',
    'prune_sns_messages',
  ]) {
    t.is(byTask[task]?.backfillPeriod, 0, task);
  }
  t.is(byTask.retain_email_events?.queueName, 'maintenance');
  t.is(byTask.expire_unsubscribe_tokens?.queueName, 'maintenance');
  t.is(byTask.prune_sns_messages?.queueName, 'maintenance');
});

test('schedules: weekly generation on Mondays 06:00 UTC, housekeeping daily, reconciliation every 10 minutes', async (t) => {
  const byTask = Object.fromEntries((await items()).map((i) => [i.task, i.match]));
  const matches = (task: string, iso: string) => byTask[task]?.(digest(iso)) === true;
  for (const monday of ['2030-04-01', '2030-04-08', '2030-04-15', '2030-04-22', '2030-04-29']) {
    t.true(matches('generate_weekly_campaign', `${monday}T06:00:00Z`), monday);
  }
  t.false(matches('generate_weekly_campaign', '2030-04-02T06:00:00Z'), 'a Tuesday');
  t.false(matches('generate_weekly_campaign', '2030-04-01T07:00:00Z'));
  t.true(matches('expire_unsubscribe_tokens', '2030-04-02T03:30:00Z'));
  t.true(matches('retain_email_events', '2030-04-02T04:00:00Z'));
  t.false(matches('retain_email_events', '2030-04-02T05:00:00Z'));
  t.true(matches('prune_sns_messages', '2030-04-02T04:30:00Z'));
  t.true(matches('reconcile_in_doubt', '2030-04-02T13:20:00Z'));
  t.false(matches('reconcile_in_doubt', '2030-04-02T13:25:00Z'));
});
