import test from 'ava';
import { createTestDatabase, type TestDatabase, uuidMillisecondsSql } from '../helpers/db.ts';
import { createCampaign, createCustomer, createTemplate } from '../helpers/factories.ts';

let db: TestDatabase;
test.before(async () => {
  db = await createTestDatabase();
});
test.after.always(async () => {
  await db?.drop();
});

// [column, data type, nullable] for every column of the seed's seven tables.
const seed: Record<string, Array<[string, string, boolean]>> = {
  customers: [
    ['customer_id', 'uuid', false],
    ['email', 'text', false],
    ['name', 'text', true],
    ['company', 'text', true],
    ['country', 'text', true],
    ['is_active', 'boolean', false],
    ['created_at', 'timestamp with time zone', false],
    ['updated_at', 'timestamp with time zone', false],
  ],
  templates: [
    ['template_id', 'uuid', false],
    ['provider', 'text', false],
    ['provider_template_name', 'text', false],
    ['week_of_month', 'integer', false],
    ['version', 'integer', false],
    ['is_active', 'boolean', false],
    ['created_at', 'timestamp with time zone', false],
  ],
  campaigns: [
    ['campaign_id', 'uuid', false],
    ['campaign_name', 'text', false],
    ['week_of_month', 'integer', false],
    ['generated_date', 'date', false],
    ['template_id', 'uuid', false],
    ['status', 'text', false],
    ['created_at', 'timestamp with time zone', false],
  ],
  campaign_recipients: [
    ['campaign_id', 'uuid', false],
    ['customer_id', 'uuid', false],
    ['email', 'text', false],
    ['recipient_status', 'text', false],
    ['ses_message_id', 'text', true],
    ['last_attempt_at', 'timestamp with time zone', true],
    ['attempt_count', 'integer', false],
    ['template_data', 'jsonb', false],
    ['created_at', 'timestamp with time zone', false],
    ['updated_at', 'timestamp with time zone', false],
  ],
  suppression_list: [
    ['email', 'text', false],
    ['reason', 'text', false],
    ['source', 'text', false],
    ['created_at', 'timestamp with time zone', false],
    ['updated_at', 'timestamp with time zone', false],
  ],
  unsubscribe_tokens: [
    ['token_id', 'uuid', false],
    ['email', 'text', false],
    ['campaign_id', 'uuid', false],
    ['expires_at', 'timestamp with time zone', false],
    ['created_at', 'timestamp with time zone', false],
    ['used_at', 'timestamp with time zone', true],
  ],
  email_events_op: [
    ['event_id', 'uuid', false],
    ['event_type', 'text', false],
    ['email', 'text', true],
    ['campaign_id', 'uuid', true],
    ['customer_id', 'uuid', true],
    ['ses_message_id', 'text', true],
    ['event_time', 'timestamp with time zone', false],
    ['payload', 'jsonb', false],
    ['created_at', 'timestamp with time zone', false],
  ],
};

for (const [table, columns] of Object.entries(seed)) {
  test(`${table} has every seed column with its type and nullability`, async (t) => {
    const { rows } = await db.pool.query<{
      column_name: string;
      data_type: string;
      is_nullable: string;
    }>(
      `select column_name, data_type, is_nullable from information_schema.columns
        where table_schema = 'public' and table_name = $1`,
      [table],
    );
    const actual = new Map(rows.map((r) => [r.column_name, r]));
    for (const [name, type, nullable] of columns) {
      const column = actual.get(name);
      t.truthy(column, `${table}.${name} exists`);
      t.is(column?.data_type, type, `${table}.${name} type`);
      t.is(column?.is_nullable, nullable ? 'YES' : 'NO', `${table}.${name} nullability`);
    }
  });
}

test('primary keys are the seed ones, composite for campaign_recipients', async (t) => {
  const { rows } = await db.pool.query<{ table: string; columns: string[] }>(
    `select c.conrelid::regclass::text as table,
            array(select a.attname::text from unnest(c.conkey) with ordinality k(n, i)
                    join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.n
                   order by k.i) as columns
       from pg_constraint c
      where c.contype = 'p' and c.connamespace = 'public'::regnamespace`,
  );
  const pks = Object.fromEntries(rows.map((r) => [r.table, r.columns]));
  t.deepEqual(pks.customers, ['customer_id']);
  t.deepEqual(pks.templates, ['template_id']);
  t.deepEqual(pks.campaigns, ['campaign_id']);
  t.deepEqual(pks.campaign_recipients, ['campaign_id', 'customer_id']);
  t.deepEqual(pks.suppression_list, ['email']);
  t.deepEqual(pks.unsubscribe_tokens, ['token_id']);
  t.deepEqual(pks.email_events_op, ['event_id']);
});

test('every foreign key states its ON DELETE behaviour', async (t) => {
  const { rows } = await db.pool.query<{ name: string; action: string }>(
    `select conname as name, confdeltype as action from pg_constraint
      where contype = 'f' and connamespace = 'public'::regnamespace`,
  );
  t.true(rows.length >= 7);
  // 'a' is NO ACTION, what you get when ON DELETE is left out.
  t.deepEqual(
    rows.filter((r) => r.action === 'a').map((r) => r.name),
    [],
  );
});

test('every table and column in public has a comment', async (t) => {
  const { rows } = await db.pool.query<{ missing: string }>(
    `select c.relname || coalesce('.' || a.attname, '') as missing
       from pg_class c
       left join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
      where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
        and (case when a.attname is null then obj_description(c.oid, 'pg_class')
                  else col_description(c.oid, a.attnum) end) is null`,
  );
  t.deepEqual(
    rows.map((r) => r.missing),
    [],
  );
});

test('customer emails are stored lowercase and unique regardless of case', async (t) => {
  const customer = await createCustomer(db.pool, { email: '  Ann.Lee@Example.COM ' });
  t.is(customer.email, 'ann.lee@example.com');
  const error = await t.throwsAsync(createCustomer(db.pool, { email: 'ANN.LEE@example.com' }));
  t.is((error as { constraint?: string }).constraint, 'customers_email_key');
});

test('an address without @ is refused', async (t) => {
  const error = await t.throwsAsync(createCustomer(db.pool, { email: 'not-an-address' }));
  t.is((error as { constraint?: string }).constraint, 'customers_email_format');
});

test('week_of_month 5 is refused for templates and campaigns', async (t) => {
  const e1 = await t.throwsAsync(createTemplate(db.pool, { week_of_month: 5 }));
  t.is((e1 as { constraint?: string }).constraint, 'templates_week_of_month_check');
  const template = await createTemplate(db.pool, { week_of_month: 1, version: 7 });
  const e2 = await t.throwsAsync(
    db.pool.query(
      `insert into campaigns (campaign_name, week_of_month, generated_date, template_id)
       values ('x', 5, '2026-01-01', $1)`,
      [template.template_id],
    ),
  );
  t.is((e2 as { constraint?: string }).constraint, 'campaigns_week_of_month_check');
});

test('unknown status and type values are refused', async (t) => {
  const template = await createTemplate(db.pool, { week_of_month: 2, version: 3 });
  const cases: Array<[string, unknown[], string]> = [
    [
      `insert into templates (provider, provider_template_name, week_of_month, version) values ('mailgun', 'x', 1, 99)`,
      [],
      'templates_provider_check',
    ],
    [
      `insert into campaigns (campaign_name, week_of_month, generated_date, template_id, status) values ('x', 2, '2026-02-01', $1, 'archived')`,
      [template.template_id],
      'campaigns_status_check',
    ],
    [
      `insert into suppression_list (email, reason, source) values ('a@b.c', 'dislike', 'ops')`,
      [],
      'suppression_list_reason_check',
    ],
    [
      `insert into suppression_list (email, reason, source) values ('a@b.c', 'manual', 'robot')`,
      [],
      'suppression_list_source_check',
    ],
    [
      `insert into email_events_op (event_type) values ('teleport')`,
      [],
      'email_events_op_event_type_check',
    ],
  ];
  for (const [sql, params, constraint] of cases) {
    const error = await t.throwsAsync(db.pool.query(sql, params));
    t.is((error as { constraint?: string }).constraint, constraint, sql);
  }
  const campaign = await createCampaign(db.pool, { template_id: template.template_id });
  const customer = await createCustomer(db.pool);
  const error = await t.throwsAsync(
    db.pool.query(
      `insert into campaign_recipients (campaign_id, customer_id, email, recipient_status)
       values ($1, $2, $3, 'delivered')`,
      [campaign.campaign_id, customer.customer_id, customer.email],
    ),
  );
  t.is((error as { constraint?: string }).constraint, 'campaign_recipients_status_check');
});

test('a second recipient row for the same campaign and customer is refused', async (t) => {
  const template = await createTemplate(db.pool, { week_of_month: 3, version: 1 });
  const campaign = await createCampaign(db.pool, { template_id: template.template_id });
  const customer = await createCustomer(db.pool);
  const insert = `insert into campaign_recipients (campaign_id, customer_id, email) values ($1, $2, $3)`;
  const params = [campaign.campaign_id, customer.customer_id, customer.email];
  await db.pool.query(insert, params);
  const error = await t.throwsAsync(db.pool.query(insert, params));
  t.is((error as { constraint?: string }).constraint, 'campaign_recipients_pkey');
});

test('customer ids follow the order customers were stored in (uuid_v7)', async (t) => {
  // One set-based insert, as an import makes them, then a few one at a time.
  await db.pool.query(
    `insert into customers (email) select 'ordered' || g || '@ids.test' from generate_series(1, 5000) g`,
  );
  for (let i = 0; i < 5; i++) {
    await db.pool.query(`insert into customers (email) values ($1)`, [`single${i}@ids.test`]);
  }
  const { rows } = await db.pool.query<{
    rows: number;
    version_7: boolean;
    backwards: number;
    clock_skew_ms: number;
  }>(
    `with c as (
       select customer_id, (ctid::text::point)[0]::int as block
         from customers where email like '%@ids.test'
     ), walked as (
       select customer_id, block, lag(block) over (order by customer_id) as previous from c
     )
     select count(*)::int as rows,
            bool_and(substr(customer_id::text, 15, 1) = '7') as version_7,
            count(*) filter (where block < previous)::int as backwards,
            max(abs(extract(epoch from clock_timestamp()) * 1000
                    - ${uuidMillisecondsSql('customer_id')}))::int
              as clock_skew_ms
       from walked`,
  );
  const r = rows[0];
  t.is(r?.rows, 5005);
  t.true(r?.version_7);
  // Walked in id order, the heap is read forwards: random ids would step back about every
  // other row. Rows made in the same microsecond may sit on one page in any order.
  t.true((r?.backwards ?? Infinity) < 50, `heap went backwards ${r?.backwards} times`);
  t.true((r?.clock_skew_ms ?? Infinity) < 60_000, `id time ${r?.clock_skew_ms} ms from now`);
});

test('a second campaign for the same week and date is refused', async (t) => {
  const template = await createTemplate(db.pool, { week_of_month: 4, version: 1 });
  await createCampaign(db.pool, {
    template_id: template.template_id,
    generated_date: '2026-03-02',
  });
  const error = await t.throwsAsync(
    createCampaign(db.pool, { template_id: template.template_id, generated_date: '2026-03-02' }),
  );
  t.is((error as { constraint?: string }).constraint, 'campaigns_week_date_key');
});

test('updated_at moves on update and created_at never changes', async (t) => {
  const customer = await createCustomer(db.pool);
  const { rows } = await db.pool.query<{ created_at: Date; updated_at: Date }>(
    `update customers set name = 'changed', created_at = '2000-01-01'
      where customer_id = $1 returning created_at, updated_at`,
    [customer.customer_id],
  );
  const row = rows[0];
  t.deepEqual(row?.created_at, customer.created_at);
  t.true((row?.updated_at.getTime() ?? 0) >= customer.updated_at.getTime());
  t.not(row?.updated_at.getTime(), new Date('2000-01-01').getTime());
});

// The insert half of _200_timestamps runs only when it has something to fix (its WHEN clause);
// what a row ends up with must not depend on whether it ran.
test('created_at and updated_at: equal on insert, created_at kept and updated_at moved on update', async (t) => {
  const client = await db.pool.connect();
  try {
    await client.query('begin');
    const now = (await client.query<{ now: Date }>('select now()')).rows[0]?.now;
    const insert = (sql: string) =>
      client.query<{ created_at: Date; updated_at: Date }>(
        `${sql} returning created_at, updated_at`,
      );
    // Defaults only.
    const plain = (await insert(`insert into customers (email) values ('a@example.com')`)).rows[0];
    t.deepEqual([plain?.created_at, plain?.updated_at], [now, now]);
    // created_at given: updated_at follows it, whatever was given for it.
    const given = (
      await insert(
        `insert into customers (email, created_at, updated_at)
         values ('b@example.com', '2020-01-01T00:00:00Z', '2030-01-01T00:00:00Z')`,
      )
    ).rows[0];
    t.deepEqual(
      [given?.created_at.toISOString(), given?.updated_at.toISOString()],
      ['2020-01-01T00:00:00.000Z', '2020-01-01T00:00:00.000Z'],
    );
    // created_at given as null: the trigger fills it in before the not-null check.
    const nulled = (
      await insert(`insert into suppression_list (email, reason, source, created_at)
                    values ('c@example.com', 'manual', 'ops', null)`)
    ).rows[0];
    t.deepEqual([nulled?.created_at, nulled?.updated_at], [now, now]);
    // Update: created_at cannot be changed, updated_at is the update's time.
    const updated = (
      await client.query<{ created_at: Date; updated_at: Date }>(
        `update customers set name = 'B', created_at = now(), updated_at = '2001-01-01Z'
          where email = 'b@example.com' returning created_at, updated_at`,
      )
    ).rows[0];
    t.deepEqual(
      [updated?.created_at.toISOString(), updated?.updated_at],
      ['2020-01-01T00:00:00.000Z', now],
    );
  } finally {
    await client.query('rollback');
    client.release();
  }
});

test('suppressed addresses are stored trimmed and lowercase too', async (t) => {
  const { rows } = await db.pool.query<{ email: string }>(
    `insert into suppression_list (email, reason, source)
     values (' Bob@Example.ORG', 'manual', 'ops') returning email`,
  );
  t.is(rows[0]?.email, 'bob@example.org');
});
