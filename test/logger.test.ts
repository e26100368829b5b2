// The graphile-worker bridge (src/logger.ts): per-job lines at debug, an error in one line below
// debug, and every key once per JSON line.
import { Writable } from 'node:stream';
import test from 'ava';
import { pino } from 'pino';
import { graphileLogFactory } from '../src/logger.ts';

function capture(level: string) {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: pino({ name: 'mailer', level }, stream), lines };
}

const job = { id: '42', task_identifier: 'send_recipient', attempts: 1, payload: { a: 1 } };
const failure = new Error('boom');
const failed = `Failed task 42 (send_recipient, 3.00ms, attempt 1 of 25) with error 'boom':\n  ${failure.stack}`;

test("graphile-worker's line per completed job is debug; other info lines stay info", (t) => {
  const { logger, lines } = capture('info');
  const log = graphileLogFactory(logger)({ label: 'worker', workerId: 'w1' });
  log('info', 'Completed task 42 (send_recipient, 3.00ms) with success', { job, success: true });
  log('info', 'campaign c1 (week 1, 2026-11-02): queued, 400 recipients');
  t.is(lines.length, 1);
  t.regex(lines[0] ?? '', /queued, 400 recipients/);
});

test('below debug a failed job is one line without its stack; debug keeps both', (t) => {
  const quiet = capture('info');
  graphileLogFactory(quiet.logger)({ label: 'worker' })('error', failed, { job, error: failure });
  const line = JSON.parse(quiet.lines[0] ?? '{}');
  t.is(line.msg, "Failed task 42 (send_recipient, 3.00ms, attempt 1 of 25) with error 'boom'");
  t.is(line.error, 'boom');
  t.is(line.err, undefined);
  t.notRegex(quiet.lines[0] ?? '', /\\n\s+at /);

  const debug = capture('debug');
  graphileLogFactory(debug.logger)({ label: 'worker' })('error', failed, { job, error: failure });
  const detailed = JSON.parse(debug.lines[0] ?? '{}');
  t.is(detailed.msg, failed);
  t.regex(detailed.err?.stack ?? '', /\n\s+at /);
});

test('a key bound by the parent or the scope is written once', (t) => {
  const { logger, lines } = capture('debug');
  const parent = logger.child({ component: 'graphile-migrate' });
  const log = graphileLogFactory(parent, 'graphile-migrate')({ label: 'job', jobId: '42' });
  log('info', 'hello', { job, component: 'other', label: 'x' });
  const text = lines[0] ?? '';
  for (const key of ['name', 'component', 'label', 'jobId']) {
    t.is(text.split(`"${key}":`).length - 1, 1, `${key} in ${text}`);
  }
});
