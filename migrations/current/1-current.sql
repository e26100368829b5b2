-- Enter migration here (rerun-safe: drop ... if exists, create or replace)

-- Pausing, queueing or resuming a done campaign failed with "RAISE statement option cannot be
-- null" (the hint had no case for done): every state now has a hint.
create or replace function public.set_campaign_status(p_campaign_id uuid, p_action text,
                                                     p_from text[], p_to text)
  returns text language plpgsql volatile as $$
declare
  v_status text;
begin
  select status into v_status from public.campaigns where campaign_id = p_campaign_id for update;
  if not found then
    raise exception '%: no campaign %', p_action, p_campaign_id using errcode = 'no_data_found';
  end if;
  if v_status = p_to or (p_to = 'queued' and v_status = 'sending') then
    return v_status; -- already there: nothing to do, nothing to record
  end if;
  if not v_status = any(p_from) then
    raise exception '%: campaign % is %; % applies to a % campaign', p_action, p_campaign_id,
      v_status, p_action, array_to_string(p_from, ' or ')
      using errcode = 'check_violation',
            -- A hint of null is itself an error ("RAISE statement option cannot be null").
            hint = case v_status
                     when 'paused' then 'resume it with resume_campaign'
                     when 'draft' then 'queue it with queue_campaign'
                     when 'done' then 'a done campaign is finished; retry_failed_recipients '
                                      || 'queues its failed recipients again'
                     else format('a %s campaign can be paused with pause_campaign', v_status)
                   end;
  end if;
  update public.campaigns
     set status = p_to,
         pause_reason = case when p_to = 'paused' then format('paused by operator %s', session_user) end
   where campaign_id = p_campaign_id;
  perform public.record_operator_action(p_action, null, p_campaign_id, null, null,
    jsonb_build_object('from', v_status, 'to', p_to));
  -- Entering queued with nothing to send ends the campaign at once (the enqueue trigger).
  select status into v_status from public.campaigns where campaign_id = p_campaign_id;
  return v_status;
end;
$$;

-- Paused campaigns no longer spend the global send rate (issue 15, item 4). A paced job reserved
-- its send slot and slept until it before it looked at its campaign, so pausing a big campaign
-- drained its queued jobs at the account's pace (100,000 jobs at 14/s: two hours in which every
-- other campaign starved). Now:
-- - pausing a campaign (by hand, or any automatic pause) removes its send jobs that are waiting,
--   so the jobs of other campaigns are next; resuming queues its pending recipients again, as
--   before;
-- - a paced job reserves its slot through reserve_send_slot_for, which gives no slot to a
--   recipient that is not pending or whose campaign is not sendable: such a job claims at once
--   (the claim decides what to do, as for an unpaced job) and ends without spending the rate.
create or replace function public.reserve_send_slot_for(p_rate double precision,
                                                        p_campaign_id uuid, p_customer_id uuid)
  returns timestamptz language sql volatile as $$
  select public.reserve_send_slot(p_rate)
   where exists (select 1 from public.campaign_recipients r
                   join public.campaigns c on c.campaign_id = r.campaign_id
                  where r.campaign_id = p_campaign_id and r.customer_id = p_customer_id
                    and r.recipient_status = 'pending' and c.status in ('queued', 'sending'));
$$;
comment on function public.reserve_send_slot_for(double precision, uuid, uuid) is
  'A pacing slot for this recipient, or null when it is not pending or its campaign is not '
  'queued or sending (the job then claims at once and ends without spending the rate).';

create or replace function public.tg_campaigns__dequeue_sends() returns trigger
  language plpgsql volatile as $$
begin
  -- By job key (enqueue_campaign_sends names every job 'send_recipient:<campaign>:<customer>').
  -- Jobs already taken by a worker (locked) run and find the campaign paused; a job released
  -- after a refused connection has no key, stays, and ends without a slot when it runs.
  perform graphile_worker.complete_jobs(array(
    select j.id from graphile_worker.jobs j
     where j.task_identifier = 'send_recipient' and j.locked_at is null
       and left(j.key, 52) = 'send_recipient:' || new.campaign_id || ':'));
  return null;
end;
$$;
comment on function public.tg_campaigns__dequeue_sends() is
  'A paused campaign''s waiting send jobs are removed, so they neither wait in front of other '
  'campaigns'' jobs nor spend send slots; resume queues its pending recipients again.';
drop trigger if exists _500_dequeue_sends on public.campaigns;
create trigger _500_dequeue_sends after update of status on public.campaigns
  for each row when (new.status = 'paused' and old.status is distinct from 'paused')
  execute function public.tg_campaigns__dequeue_sends();
