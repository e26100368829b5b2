--! Previous: sha1:17af8dd7e691223d40d6b42909ab844cae4f798f
--! Hash: sha1:c234effc7a9af7d04a35d7d267187de8b6436f2a
--! Message: The last sends no longer queue on the finishing lock

--! split: 1-current.sql
-- The last sends of a campaign no longer queue on its finishing lock. Every job whose outcome
-- found nothing pending called finish_campaign_if_complete, and each took the campaign's
-- exclusive advisory lock in turn, while recipients were still in flight: at R = 2,000/s with 2
-- worker processes of 128 jobs, about 250 calls waited one behind the other after the last
-- send, holding the pool's connections (Lock:advisory 58-73% of the sampled backend time of
-- bench/pacing.ts). While a recipient is `sending` the answer is "not yet", without the lock, as
-- it already was while one is pending: its own outcome (or release_dead_workers, or the sweep
-- once its claim expires) calls this again after committing, and that last call sees the rest.
create or replace function public.finish_campaign_if_complete(p_campaign_id uuid) returns boolean
  language plpgsql volatile
  as $$
begin
  if (select r.customer_id from public.campaign_recipients r
       where r.campaign_id = p_campaign_id and r.recipient_status = 'pending'
       order by r.campaign_id desc, r.customer_id desc limit 1) is not null then
    return null;
  end if;
  if exists (select 1 from public.campaign_recipients r
              where r.campaign_id = p_campaign_id and r.recipient_status = 'sending') then
    return null;
  end if;
  -- Waits for every outcome still being recorded (see record_send_outcomes).
  perform pg_advisory_xact_lock(7301, hashtext(p_campaign_id::text));
  -- A campaign still generating is not done: more recipients are coming (the last chunk calls
  -- this again).
  update public.campaigns set status = 'done'
   where campaign_id = p_campaign_id and status in ('queued', 'sending') and not generating
     and (select r.customer_id from public.campaign_recipients r
           where r.campaign_id = p_campaign_id and r.recipient_status = 'pending'
           order by r.campaign_id desc, r.customer_id desc limit 1) is null
     and not exists (select 1 from public.campaign_recipients r
                      where r.campaign_id = p_campaign_id and r.recipient_status = 'sending');
  return found or null;
end;
$$;
comment on function public.finish_campaign_if_complete(uuid) is
  'Marks a queued/sending campaign done when its generation is finished and no recipient is pending or sending; waits for outcomes being recorded (record_send_outcomes) so that the last of them is never missed. While a recipient is pending or sending it answers null at once: that recipient''s own outcome calls it again.';
