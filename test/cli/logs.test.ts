// What an operator reads: at the default level a campaign logs a fixed number of lines, however
// many recipients it has (per-job lines are debug); JSON lines never repeat a key; a worker
// stopped by SIGTERM says so at info and nothing at error.
import test, { type ExecutionContext } from 'ava';
import { runCli, startWorkerCli, waitForWorkerRegistration } from '../helpers/cli.ts';
import { createEmptyDatabase, createTestDatabase } from '../helpers/db.ts';
import { generate, seedCustomers, startPipeline, waitForDone } from '../pipeline/harness.ts';

function lines(output: string): string[] {
  return output.split('\n').filter((line) => line.trim() !== '');
}

// The keys of every object in one JSON text, each object's keys in order: JSON.parse keeps the
// last of two equal keys, so duplicates are only visible in the raw text.
function duplicateKeys(json: string): string[] {
  const found: string[] = [];
  const stack: { keys: Set<string>; object: boolean; expectKey: boolean }[] = [];
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    const top = stack.at(-1);
    if (c === '"') {
      let end = i + 1;
      while (json[end] !== '"') end += json[end] === '\\' ? 2 : 1;
      if (top?.object && top.expectKey) {
        const key = JSON.parse(json.slice(i, end + 1)) as string;
        if (top.keys.has(key)) found.push(key);
        top.keys.add(key);
        top.expectKey = false;
      }
      i = end;
    } else if (c === '{' || c === '[') {
      stack.push({ keys: new Set(), object: c === '{', expectKey: c === '{' });
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',' && top?.object) {
      top.expectKey = true;
    }
  }
  return found;
}

test('duplicateKeys finds a repeated key at any depth and only then', (t) => {
  t.deepEqual(duplicateKeys('{"a":1,"b":{"c":"x,\\"c\\"","c":2},"a":3}'), ['c', 'a']);
  t.deepEqual(duplicateKeys('{"a":[{"b":1},{"b":2}],"s":"{\\"a\\":1}"}'), []);
});

async function campaignLog(t: ExecutionContext, recipients: number) {
  const p = await startPipeline(t, { env: { LOG_LEVEL: 'info' } });
  await seedCustomers(p.db, { active: recipients });
  const worker = await p.startWorker();
  const campaignId = await generate(p.db);
  await waitForDone(p.db, campaignId);
  // The last outcomes are logged as they are recorded; give the process a moment to write them.
  await new Promise((r) => setTimeout(r, 1_500));
  worker.child.kill('SIGTERM');
  await worker.exited;
  return lines(worker.output());
}

test('a campaign logs the same few lines at the default level for 50 or 400 recipients', async (t) => {
  const [small, large] = await Promise.all([campaignLog(t, 50), campaignLog(t, 400)]);
  t.log(`50 recipients: ${small.length} lines; 400 recipients: ${large.length} lines`);
  t.log(large.join('\n'));
  t.true(large.length <= 30, `${large.length} lines for 400 recipients`);
  t.true(Math.abs(large.length - small.length) <= 2, `${small.length} vs ${large.length} lines`);
  for (const line of large) t.notRegex(line, /Completed task/);
  // The campaign's end is said once, with its counts.
  const done = large.filter((line) => line.includes('campaign done'));
  t.is(done.length, 1, large.join('\n'));
  t.regex(done[0] ?? '', /"sent":400/);
});

test('no JSON log line repeats a key, at debug, through a whole campaign', async (t) => {
  const p = await startPipeline(t, { env: { LOG_LEVEL: 'debug' } });
  await seedCustomers(p.db, { active: 20 });
  const worker = await p.startWorker();
  const campaignId = await generate(p.db);
  await waitForDone(p.db, campaignId);
  worker.child.kill('SIGTERM');
  await worker.exited;
  const json = lines(worker.output()).filter((line) => line.startsWith('{'));
  t.true(json.length > 40, `${json.length} debug lines`);
  const repeated = json.filter((line) => duplicateKeys(line).length > 0);
  t.deepEqual(repeated, []);
});

test('no JSON log line of mailer migrate repeats a key', async (t) => {
  const db = await createEmptyDatabase();
  t.teardown(() => db.drop());
  const result = await runCli(['migrate'], { DATABASE_URL: db.url, LOG_LEVEL: 'debug' });
  t.is(result.code, 0, result.stderr);
  const json = lines(result.stderr).filter((line) => line.startsWith('{'));
  t.true(json.some((line) => line.includes('"component":"graphile-migrate"')));
  t.deepEqual(
    json.filter((line) => duplicateKeys(line).length > 0),
    [],
  );
});

test('SIGTERM to an idle worker stops it with exit 0 and nothing at error level', async (t) => {
  const db = await createTestDatabase();
  t.teardown(() => db.drop());
  const worker = startWorkerCli(t, {
    DATABASE_URL: db.url,
    SES_ENDPOINT: 'local',
    LOG_LEVEL: 'info',
  });
  await waitForWorkerRegistration(db.pool);
  // Idle: past a poll or two of both runners.
  await new Promise((r) => setTimeout(r, 3_000));
  worker.child.kill('SIGTERM');
  t.deepEqual(await worker.exited, { code: 0, signal: null }, worker.output());
  const output = lines(worker.output());
  const levels = output.map((line) => (JSON.parse(line) as { level: number }).level);
  t.true(
    levels.every((level) => level < 50),
    output.join('\n'),
  );
  t.notRegex(worker.output(), /AggregateError|\n\s+at /);
  t.true(output.some((line) => line.includes('"worker stopped"')));
});
