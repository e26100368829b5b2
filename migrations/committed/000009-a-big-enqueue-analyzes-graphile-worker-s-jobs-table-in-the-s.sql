--! Previous: sha1:9da611571fbe4c4c3e17ac5a32fd9398b7b80f8d
--! Hash: sha1:921a3665a44d3bf355798fa848db6cf32e08c66b
--! Message: a big enqueue analyzes graphile-worker's jobs table in the same transaction, so the job fetch is not planned for an empty table

--! split: 1-current.sql
-- A big enqueue brings graphile-worker's jobs table statistics up to date in the same transaction.
-- Between campaigns the jobs table is usually empty, and once vacuumed its statistics say so
-- (reltuples 0). The planner then estimates one row for graphile-worker's job fetch and plans a
-- sequential scan and a sort of the whole table for every batch of 100 jobs, until autovacuum
-- gets round to analyzing it (up to a minute later): in bench/send-throughput.ts a 100,000-recipient
-- campaign queued after 20,000 other jobs had run sent at 300-1,100/s for its first ~18 s, each
-- fetch taking 60-200 ms. ANALYZE inside the enqueueing transaction counts the transaction's own
-- new rows (~40 ms for 100,000 jobs), and its statistics commit with the jobs.
-- This is the one place mailer touches a graphile_worker table other than through its functions,
-- and it only reads it. ANALYZE needs the table's owner (or the database's); for any other role
-- (mailer_app, mailer_operator) it is skipped and autovacuum's analyze is what helps.
create or replace function public.enqueue_campaign_sends(p_campaign_id uuid) returns integer
  language plpgsql volatile as $$
declare
  v_count integer;
begin
  select count(*)::integer into v_count from graphile_worker.add_jobs(
    array(
      select row(
        'send_recipient',
        json_build_object('campaign_id', r.campaign_id, 'customer_id', r.customer_id),
        null, null, null,
        'send_recipient:' || r.campaign_id || ':' || r.customer_id,
        null, null)::graphile_worker.job_spec
        from public.campaign_recipients r
       where r.campaign_id = p_campaign_id and r.recipient_status = 'pending'
       order by r.campaign_id, r.customer_id),
    true);
  if v_count >= 10000 and exists (
       select 1 from pg_catalog.pg_class c
        where c.oid = 'graphile_worker._private_jobs'::regclass
          and (pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
               or pg_catalog.pg_has_role(current_user,
                    (select d.datdba from pg_catalog.pg_database d
                      where d.datname = pg_catalog.current_database()), 'USAGE'))) then
    analyze graphile_worker._private_jobs;
  end if;
  return v_count;
end;
$$;
comment on function public.enqueue_campaign_sends(uuid) is
  'Adds one send_recipient job per pending recipient of the campaign, in customer_id order; '
  'returns how many. From 10,000 jobs on it also analyzes the jobs table (when the caller owns it), '
  'so graphile-worker''s job fetch is planned for the rows that are there.';
