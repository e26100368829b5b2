import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import test from 'ava';
import { verifyGzipLines, writeGzipLines } from '../../src/retention/export-file.ts';
import { connectClient, createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { taskRunner } from '../helpers/tasks.ts';

// The S3 client reads credentials and region from the standard chain; the fake endpoint accepts
// any.
process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
process.env.AWS_REGION ??= 'eu-west-1';

// A minimal S3 over HTTP: PUT stores an object (checking its SHA-256 header, as S3 does), HEAD
// reports its size. `fail` makes PUTs answer 500.
interface FakeS3 {
  url: string;
  objects: Map<string, Buffer>;
  fail: boolean;
  close(): Promise<void>;
}

async function startFakeS3(): Promise<FakeS3> {
  const objects = new Map<string, Buffer>();
  const state = { fail: false };
  const server: Server = createServer((req, res) => {
    const key = decodeURIComponent((req.url ?? '').split('?')[0] ?? '');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'PUT') {
        const body = Buffer.concat(chunks);
        const sha = createHash('sha256').update(body).digest('base64');
        if (state.fail) {
          res.writeHead(500, { 'content-type': 'application/xml' });
          return res.end('<Error><Code>InternalError</Code><Message>down</Message></Error>');
        }
        if (req.headers['x-amz-checksum-sha256'] !== sha) {
          res.writeHead(400, { 'content-type': 'application/xml' });
          return res.end('<Error><Code>BadDigest</Code><Message>checksum</Message></Error>');
        }
        objects.set(key, body);
        res.writeHead(200, { etag: '"x"', 'x-amz-checksum-sha256': sha });
        return res.end();
      }
      const object = objects.get(key);
      if (req.method === 'HEAD' && object) {
        res.writeHead(200, { 'content-length': object.length, etag: '"x"' });
        return res.end();
      }
      res.writeHead(404);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    objects,
    get fail() {
      return state.fail;
    },
    set fail(value: boolean) {
      state.fail = value;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

let db: TestDatabase;
let dir: string;
let s3: FakeS3;
test.before(async () => {
  s3 = await startFakeS3();
  dir = join(tmpdir(), `mailer-retention-${randomUUID()}`);
});
test.after.always(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});
test.beforeEach(async () => {
  db = await createTestDatabase();
});
test.afterEach.always(async () => {
  await db?.drop();
});

// `old` events 40 days old (a second apart, oldest first), `recent` from today.
async function seedEvents(old: number, recent: number): Promise<string[]> {
  const { rows } = await db.pool.query<{ event_id: string }>(
    `insert into email_events_op (event_type, email, ses_message_id, event_time, payload, created_at)
     select 'delivery', 'r' || g || '@example.com', 'msg-' || g,
            now() - interval '40 days' + g * interval '1 second',
            jsonb_build_object('eventType', 'Delivery', 'n', g, 'note', e'line\\nbreak "quoted"'),
            now() - interval '40 days' + g * interval '1 second'
       from generate_series(1, $1::int) g
     returning event_id`,
    [old],
  );
  await db.pool.query(
    `insert into email_events_op (event_type, email, payload)
     select 'open', 'fresh' || g || '@example.com', '{}' from generate_series(1, $1::int) g`,
    [recent],
  );
  return rows.map((r) => r.event_id);
}

async function counts() {
  const { rows } = await db.pool.query<{ events: number; exports: number }>(
    `select (select count(*)::int from email_events_op) as events,
            (select count(*)::int from email_event_exports) as exports`,
  );
  return rows[0];
}

function ndjson(gzip: Buffer): Array<Record<string, unknown>> {
  return gunzipSync(gzip)
    .toString('utf8')
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

test.serial(
  'exports old events to gzip NDJSON files, then deletes exactly those rows',
  async (t) => {
    const ids = await seedEvents(5, 2);
    const exportDir = join(dir, 'local');
    const task = await taskRunner('retain_email_events', db.pool, {
      EVENTS_EXPORT_DIR: exportDir,
      EVENTS_RETENTION_DAYS: '30',
      EVENTS_EXPORT_BATCH_ROWS: '2',
    });
    await task.run();
    t.deepEqual(await counts(), { events: 2, exports: 3 });

    const files = (await readdir(exportDir)).sort();
    t.is(files.length, 3);
    t.true(files.every((f) => /^email_events_op-\d{8}T\d{6}Z-[0-9a-f-]{36}\.ndjson\.gz$/.test(f)));
    const lines = [];
    for (const f of files) lines.push(...ndjson(await readFile(join(exportDir, f))));
    t.deepEqual(
      lines.map((l) => l.event_id),
      ids,
      'every deleted event, in created_at order',
    );
    const first = lines[0] ?? {};
    t.deepEqual(Object.keys(first).sort(), [
      'campaign_id',
      'created_at',
      'customer_id',
      'email',
      'event_id',
      'event_time',
      'event_type',
      'payload',
      'ses_message_id',
    ]);
    t.regex(String(first.event_time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    t.like(first, { email: 'r1@example.com', payload: { n: 1, note: 'line\nbreak "quoted"' } });

    const manifest = await db.pool.query<{ location: string; row_count: number; sha256: string }>(
      'select location, row_count, sha256 from email_event_exports order by first_created_at',
    );
    t.deepEqual(
      manifest.rows.map((m) => m.row_count),
      [2, 2, 1],
    );
    const firstFile = await readFile(manifest.rows[0]?.location ?? '');
    t.is(manifest.rows[0]?.sha256, createHash('sha256').update(firstFile).digest('hex'));

    await task.run();
    t.deepEqual(await counts(), { events: 2, exports: 3 }, 'nothing older is left: no new file');
  },
);

test.serial('when the export cannot be written, nothing is deleted', async (t) => {
  await seedEvents(3, 1);
  const notADirectory = join(dir, 'a-file');
  await mkdir(dir, { recursive: true });
  await writeFile(notADirectory, 'x');
  const task = await taskRunner('retain_email_events', db.pool, {
    EVENTS_EXPORT_DIR: join(notADirectory, 'exports'),
  });
  await t.throwsAsync(task.run());
  t.deepEqual(await counts(), { events: 4, exports: 0 });
});

test.serial(
  'with S3 configured the file is uploaded with its checksum before rows are deleted',
  async (t) => {
    const ids = await seedEvents(3, 1);
    const staging = join(dir, 'staging');
    const env = {
      EVENTS_EXPORT_DIR: staging,
      EVENTS_EXPORT_S3_BUCKET: 'mailer-archive',
      EVENTS_EXPORT_S3_PREFIX: 'events/email_events_op/',
      EVENTS_EXPORT_S3_ENDPOINT: s3.url,
    };
    const task = await taskRunner('retain_email_events', db.pool, env);

    s3.fail = true;
    await t.throwsAsync(task.run());
    t.deepEqual(await counts(), { events: 4, exports: 0 }, 'a failed upload deletes nothing');

    s3.fail = false;
    await task.run();
    t.deepEqual(await counts(), { events: 1, exports: 1 });
    const [key, body] = [...s3.objects.entries()][0] ?? [];
    t.regex(
      key ?? '',
      /^\/mailer-archive\/events\/email_events_op\/email_events_op-.*\.ndjson\.gz$/,
    );
    t.deepEqual(
      ndjson(body ?? Buffer.alloc(0)).map((l) => l.event_id),
      ids,
    );
    const manifest = await db.pool.query<{ location: string }>(
      'select location from email_event_exports',
    );
    t.is(manifest.rows[0]?.location, `s3:/${key}`);
    t.deepEqual(await readdir(staging), [], 'the uploaded file is not kept locally');
  },
);

test.serial("AWS_ENDPOINT_URL_S3, the SDK's own variable, sends the export there", async (t) => {
  await seedEvents(2, 1);
  const env = {
    EVENTS_EXPORT_DIR: join(dir, 'staging-env'),
    EVENTS_EXPORT_S3_BUCKET: 'mailer-archive',
  };
  const before = s3.objects.size;
  process.env.AWS_ENDPOINT_URL_S3 = s3.url;
  try {
    const task = await taskRunner('retain_email_events', db.pool, env);
    await task.run();
  } finally {
    delete process.env.AWS_ENDPOINT_URL_S3;
  }
  t.is(s3.objects.size, before + 1);
  t.deepEqual(await counts(), { events: 1, exports: 1 });
});

test.serial('a second run while one holds the lock exports and deletes nothing', async (t) => {
  await seedEvents(2, 0);
  const holder = await connectClient(t, db.url);
  await holder.query("select pg_advisory_lock(hashtext('mailer:retain_email_events'))");
  const task = await taskRunner('retain_email_events', db.pool, {
    EVENTS_EXPORT_DIR: join(dir, 'locked'),
  });
  await task.run();
  t.deepEqual(await counts(), { events: 2, exports: 0 });
  t.true(task.logs.some((l) => /holds the lock/.test(String(l.msg))));
});

test('a file that does not hold exactly the exported ids fails verification', async (t) => {
  await mkdir(dir, { recursive: true });
  const path = join(dir, `verify-${randomUUID()}.ndjson.gz`);
  async function* lines() {
    yield JSON.stringify({ event_id: 'a' });
    yield JSON.stringify({ event_id: 'b' });
  }
  await writeGzipLines(path, lines());
  const ok = await verifyGzipLines(path, ['a', 'b']);
  t.is(
    ok.sha256,
    createHash('sha256')
      .update(await readFile(path))
      .digest('hex'),
  );
  await t.throwsAsync(verifyGzipLines(path, ['a', 'c']), {
    message: /line 2 holds event b, expected c/,
  });
  await t.throwsAsync(verifyGzipLines(path, ['a', 'b', 'c']), { message: /2 lines, expected 3/ });
  await t.throwsAsync(verifyGzipLines(path, ['a']), { message: /line 2 holds event b/ });
});
