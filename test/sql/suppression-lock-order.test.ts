// Two SES events that suppress several addresses at once, applied at the same moment, never
// deadlock. The suppression trigger (_150_keep_strongest) locks a bucket, hashtext(email) & 255,
// for each row it inserts, in the order the rows come; apply_ses_event inserts an event's
// addresses in the order ses_event_addresses gives them.
import test from 'ava';
import { sesEvent } from '../events/helpers.ts';
import { waitFor } from '../helpers/cli.ts';
import { connectClient, databaseForFile } from '../helpers/db.ts';

const db = databaseForFile();

const bucketOf = async (email: string) =>
  (await db.pool.query<{ bucket: number }>('select hashtext($1) & 255 as bucket', [email])).rows[0]
    ?.bucket ?? -1;

/** The first address `<prefix><n>@lock-order.test` whose bucket passes `wanted`. */
async function addressIn(prefix: string, wanted: (bucket: number) => boolean): Promise<string> {
  for (let n = 1; n < 10_000; n++) {
    const email = `${prefix}${n}@lock-order.test`;
    if (wanted(await bucketOf(email))) return email;
  }
  throw new Error(`no ${prefix} address in the wanted bucket`);
}

function bounceOf(emails: string[], messageId: string) {
  return sesEvent(
    'Bounce',
    { email: emails[0] as string, messageId },
    { detail: { bouncedRecipients: emails.map((emailAddress) => ({ emailAddress })) } },
  );
}

test('two bounces whose addresses share buckets crosswise both apply, without a deadlock', async (t) => {
  // Event one names a (bucket X), b (Z) and c (Y); event two e (Y) and f (X). Taken by address,
  // one holds X and waits for Z (held here), two holds Y and waits for X, and once Z is free, one
  // waits for Y: a cycle. Taken in one order by every writer, there is none.
  const a = await addressIn('a', () => true);
  const x = await bucketOf(a);
  const f = await addressIn('f', (bucket) => bucket === x);
  const b = await addressIn('b', (bucket) => bucket !== x);
  const z = await bucketOf(b);
  const c = await addressIn('c', (bucket) => bucket !== x && bucket !== z);
  const y = await bucketOf(c);
  const e = await addressIn('e', (bucket) => bucket === y);

  const blocker = await connectClient(t, db.url);
  const one = await connectClient(t, db.url);
  const two = await connectClient(t, db.url);
  const pidOf = async (client: typeof one) =>
    (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid;
  const [onePid, twoPid] = [await pidOf(one), await pidOf(two)];
  const waiting = async (pid: number | undefined) =>
    ((await db.pool.query('select 1 from pg_locks where pid = $1 and not granted', [pid]))
      .rowCount ?? 0) > 0;

  await blocker.query(`select pg_advisory_lock(hashtext('public.suppression_list'), $1)`, [z]);
  const apply = (client: typeof one, emails: string[], messageId: string) =>
    client
      .query('select * from public.apply_ses_event($1::jsonb, 1, 1, 1000000)', [
        JSON.stringify(bounceOf(emails, messageId)),
      ])
      .then(
        () => 'applied',
        (error: Error) => error.message,
      );
  const first = apply(one, [a, b, c], 'lock-order-1');
  await waitFor(() => waiting(onePid), { what: 'event one to wait for the held bucket' });
  let twoDone = false;
  const second = apply(two, [e, f], 'lock-order-2').finally(() => {
    twoDone = true;
  });
  await waitFor(async () => twoDone || (await waiting(twoPid)), {
    what: 'event two to wait or end',
  });
  await blocker.query(`select pg_advisory_unlock(hashtext('public.suppression_list'), $1)`, [z]);

  t.deepEqual(await Promise.all([first, second]), ['applied', 'applied']);
  const { rows } = await db.pool.query<{ email: string }>(
    `select email from suppression_list where email = any($1) and reason = 'bounce_hard'`,
    [[a, b, c, e, f]],
  );
  t.deepEqual(rows.map((r) => r.email).sort(), [a, b, c, e, f].sort());
});
