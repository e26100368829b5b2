--! Previous: sha1:921a3665a44d3bf355798fa848db6cf32e08c66b
--! Hash: sha1:c2622e91c61a256f05ff7adf46f731d4b51f6f6d
--! Message: A job taken while its paused campaign is being resumed waits for the resume before claiming

--! split: 1-current.sql
-- A job taken while its paused campaign was being resumed could end without sending, leaving
-- its recipient pending with no job and the campaign never done. graphile-worker's add_jobs clears
-- the key of every locked job it is given (then adds a new job for it) in one statement, and upserts
-- by key in the next, skipping a job that is locked by then: a job taken between the two keeps its
-- key and gets no successor. If that job claimed before the resume committed, claim_recipient read
-- the campaign as paused and the job ended. Now claim_recipient, finding the campaign not
-- sendable, waits for any status change in progress (a share lock on the campaign row) and reads
-- the status it leaves (test/sql/operations.test.ts reproduces the interleaving).
create or replace function public.claim_recipient(
  p_campaign_id uuid, p_customer_id uuid, p_lease interval, p_rate double precision
) returns public.send_claim
  language plpgsql volatile as $$
declare
  r public.campaign_recipients;
  v_campaign_status text;
  v_provider text;
  v_template_name text;
  v_template_id uuid;
  v_result public.send_claim;
begin
  -- A campaign that is not sendable as of this snapshot may be changing status right now (a
  -- resume in flight). Wait for that change before deciding: a job taken while its campaign was
  -- being resumed may have no successor job (graphile-worker's add_jobs skips a job locked
  -- between its two statements), so ending it as "paused" would leave its recipient pending
  -- with no job. The share lock is taken before the recipient's row, in the order
  -- claim_recipients locks (campaign, then recipients), and only on this rare path.
  if not exists (select 1 from public.campaigns
                  where campaign_id = p_campaign_id and status in ('queued', 'sending')) then
    perform 1 from public.campaigns where campaign_id = p_campaign_id for share;
  end if;

  select * into r from public.campaign_recipients
   where campaign_id = p_campaign_id and customer_id = p_customer_id
     for update;
  if not found then
    v_result.outcome := 'not_found';
    return v_result;
  end if;
  v_result.email := r.email;
  if r.recipient_status = 'sending' then
    if r.last_attempt_at < now() - p_lease then
      update public.campaign_recipients
         set recipient_status = 'in_doubt', last_error = 'claim expired without a recorded outcome'
       where campaign_id = p_campaign_id and customer_id = p_customer_id;
      v_result.outcome := 'in_doubt';
    else
      v_result.outcome := 'in_flight';
    end if;
    return v_result;
  end if;
  if r.recipient_status <> 'pending' then
    v_result.outcome := r.recipient_status;
    return v_result;
  end if;

  select c.status, t.provider, t.provider_template_name, t.template_id
    into v_campaign_status, v_provider, v_template_name, v_template_id
    from public.campaigns c join public.templates t using (template_id)
   where c.campaign_id = p_campaign_id;
  if v_campaign_status not in ('queued', 'sending') then
    v_result.outcome := 'campaign_' || v_campaign_status;
    return v_result;
  end if;

  -- Suppression is checked again here, under the recipient's row lock, at send time.
  if exists (select 1 from public.suppression_list where email = r.email) then
    update public.campaign_recipients
       set recipient_status = 'suppressed', last_error = 'suppressed at send time'
     where campaign_id = p_campaign_id and customer_id = p_customer_id;
    v_result.outcome := 'suppressed';
    return v_result;
  end if;

  update public.campaign_recipients
     set recipient_status = 'sending', attempt_count = attempt_count + 1,
         last_attempt_at = now(), last_error = null
   where campaign_id = p_campaign_id and customer_id = p_customer_id;

  if v_campaign_status = 'queued' then
    update public.campaigns set status = 'sending'
     where campaign_id = p_campaign_id and status = 'queued';
  end if;

  if coalesce(p_rate, 0) > 0 then
    v_result.send_at := public.reserve_send_slot(p_rate);
  end if;

  v_result.outcome := 'claimed';
  v_result.template_data := r.template_data;
  v_result.provider := v_provider;
  v_result.provider_template_name := v_template_name;
  v_result.template_id := v_template_id;
  v_result.attempt_count := r.attempt_count + 1;
  return v_result;
end;
$$;
