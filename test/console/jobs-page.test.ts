import test from 'ava';
import { actionsOf, databaseForFile } from '../helpers/db.ts';
import { getPage, loginAs, pagesApp, postForm } from './pages-helpers.ts';

const db = databaseForFile();

// Tests share one queue: each works on a task name of its own.
async function failedJob(task: string, error: string): Promise<string> {
  const { rows } = await db.pool.query<{ id: string }>(
    `select id from graphile_worker.add_job($1, '{}'::json, max_attempts => 3)`,
    [task],
  );
  const id = rows[0]?.id as string;
  // What a worker leaves behind once a job used up its attempts (test set-up only).
  await db.pool.query(
    `update graphile_worker._private_jobs set attempts = max_attempts, last_error = $2
      where id = $1`,
    [id, error],
  );
  return id;
}

async function attempts(id: string): Promise<number | undefined> {
  const { rows } = await db.pool.query<{ attempts: number }>(
    'select attempts from graphile_worker.jobs where id = $1',
    [id],
  );
  return rows[0]?.attempts;
}

test('a viewer sees queue depth per task and failed jobs with their last error, escaped', async (t) => {
  const task = 'viewer_task';
  const id = await failedJob(task, 'Error: <script>alert(1)</script> went wrong\n    at stack');
  await db.pool.query(`select graphile_worker.add_job($1, '{}'::json)`, [task]);
  const app = pagesApp(db.pool);
  const viewer = await loginAs(db.pool, 'viewer');
  const res = await getPage(app, viewer, `/jobs?task=${task}`);
  t.is(res.statusCode, 200);
  t.regex(
    res.body,
    new RegExp(
      `>${task}</a></td><td class="num">1</td><td class="num">0</td><td class="num">0</td><td class="num">0</td><td class="num">1</td>`,
    ),
  );
  t.true(res.body.includes(`<td>${id}</td><td>${task}</td><td>3/3</td>`));
  t.true(res.body.includes('Error: &lt;script&gt;alert(1)&lt;/script&gt; went wrong'));
  t.true(res.body.includes('<details><summary>more</summary><pre>    at stack</pre></details>'));
  t.false(res.body.includes('<script>alert(1)</script>'));
  t.false(res.body.includes('/retry'), 'a viewer gets no retry buttons');
  const refused = await postForm(app, viewer, `/jobs/${id}/retry`, {});
  t.is(refused.statusCode, 403);
  t.is(await attempts(id), 3);
});

test('an operator retries one failed job, recorded under their console name', async (t) => {
  const id = await failedJob('operator_task', 'Error: boom');
  const app = pagesApp(db.pool);
  const operator = await loginAs(db.pool, 'operator');
  const page = await getPage(app, operator, '/jobs?task=operator_task');
  t.true(page.body.includes(`action="/jobs/${id}/retry"`));
  const res = await postForm(app, operator, `/jobs/${id}/retry`, {});
  t.is(res.statusCode, 303);
  t.is(await attempts(id), 0);
  const action = (await actionsOf(db.pool, 'retry_jobs')).find(
    (a) => a.details.task === 'operator_task',
  );
  t.is(action?.actor, `console:${operator.username}`);
  t.deepEqual(action?.details.job_ids, [Number(id)]);
  const missing = await postForm(app, operator, '/jobs/999999999/retry', {});
  t.is(missing.statusCode, 409);
  t.regex(missing.body, /retry_job: no job 999999999/);
});

test('an operator retries every failed job of a task, and only that task', async (t) => {
  const a = await failedJob('bulk_task', 'Error: one');
  const b = await failedJob('bulk_task', 'Error: two');
  const other = await failedJob('other_task', 'Error: three');
  const app = pagesApp(db.pool);
  const operator = await loginAs(db.pool, 'operator');
  const viewer = await loginAs(db.pool, 'viewer');
  t.is((await postForm(app, viewer, '/jobs/retry-failed', { task: 'bulk_task' })).statusCode, 403);
  const res = await postForm(app, operator, '/jobs/retry-failed', { task: 'bulk_task' });
  t.is(res.statusCode, 303);
  t.is(res.headers.location, '/jobs?task=bulk_task&done=retried_all&n=2');
  t.deepEqual([await attempts(a), await attempts(b), await attempts(other)], [0, 0, 3]);
  const action = (await actionsOf(db.pool, 'retry_jobs')).find(
    (x) => x.details.task === 'bulk_task',
  );
  t.is(action?.actor, `console:${operator.username}`);
});
