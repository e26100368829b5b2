--! Previous: sha1:c2622e91c61a256f05ff7adf46f731d4b51f6f6d
--! Hash: sha1:7ddcfc872a2b9b8eb3f7e412b477c91862c20f11
--! Message: The sweep queues again pending recipients that have no job once no send job can still run

--! split: 1-current.sql
-- The sweep re-enqueues recipients that no job will reach. A pending recipient of a queued or
-- sending campaign whose job is gone (deleted by hand, or lost to a race like the one migration
-- 000010 closes) would keep its campaign from ever being done. Looking for each pending
-- recipient's job every minute would cost a lookup per recipient while a campaign sends; so the
-- look happens only once no send_recipient job is left that could still run (none waiting,
-- retrying or running; one failed for good does not count). Then a pending recipient of a queued
-- or sending campaign with no job under its key is queued again. A recipient whose job failed for
-- good keeps that job: retrying it is an operator's decision (`mailer jobs retry --failed`). A lost
-- job therefore delays its recipient until the rest of the queue has drained, and at most a
-- minute more. Paused and draft campaigns are left alone.
create or replace function public.requeue_orphaned_recipients() returns integer
  language plpgsql volatile as $$
declare
  v_count integer;
begin
  if exists (select 1 from graphile_worker.jobs j
              where j.task_identifier = 'send_recipient'
                and (j.attempts < j.max_attempts or j.locked_at is not null)) then
    return 0;
  end if;
  select count(*)::integer into v_count from graphile_worker.add_jobs(
    array(
      select row(
        'send_recipient',
        json_build_object('campaign_id', r.campaign_id, 'customer_id', r.customer_id),
        null, null, null,
        'send_recipient:' || r.campaign_id || ':' || r.customer_id,
        null, null)::graphile_worker.job_spec
        from public.campaigns c
        join public.campaign_recipients r on r.campaign_id = c.campaign_id
       where c.status in ('queued', 'sending') and r.recipient_status = 'pending'
         and not exists (
           select 1 from graphile_worker.jobs j
            where j.key = 'send_recipient:' || r.campaign_id || ':' || r.customer_id)
       order by r.campaign_id, r.customer_id),
    true);
  return v_count;
end;
$$;
comment on function public.requeue_orphaned_recipients() is
  'Called by the sweep: once no send_recipient job can still run, queues the pending recipients '
  'of queued and sending campaigns that have no job at all (lost by hand or by a race). Returns '
  'how many.';
