--! Previous: sha1:7ddcfc872a2b9b8eb3f7e412b477c91862c20f11
--! Hash: sha1:9d5191e5b65ccbdfc74432fdb86b021783627152
--! Message: SES errors judged by scope: campaigns.pause_reason, a paused outcome that returns the recipient to pending, retry_failed_recipients

--! split: 1-current.sql
-- SES errors judged by their scope (issue 14). An account or configuration error (AccessDenied,
-- a missing template, an unverified From identity, SendingPaused...) pauses the campaign with the
-- reason recorded and puts the recipient back to pending: nobody ends `failed` for a fault that is
-- not theirs. A recipient that did end failed by mistake can be queued again by an operator.

alter table public.campaigns add column if not exists pause_reason text;
alter table public.campaigns drop constraint if exists campaigns_pause_reason_only_when_paused;
alter table public.campaigns add constraint campaigns_pause_reason_only_when_paused
  check (pause_reason is null or status = 'paused');
comment on column public.campaigns.pause_reason is
  'Why the campaign is paused: the SES error that paused it, the reputation or failure-rate '
  'guard''s reason, or the operator who paused it. Null unless status is paused; cleared when '
  'it leaves paused.';

alter table public.operator_actions drop constraint if exists operator_actions_action_check;
alter table public.operator_actions add constraint operator_actions_action_check check (action in (
  'suppress', 'unsuppress', 'queue_campaign', 'pause_campaign', 'resume_campaign',
  'enqueue_generate_campaign', 'retry_jobs', 'resolve_in_doubt', 'add_template',
  'activate_template', 'deactivate_template', 'retry_failed'));

-- The reason belongs to the pause: leaving paused (resume, or done) clears it.
create or replace function public.tg_campaigns__check_transition() returns trigger
  language plpgsql volatile as $$
begin
  if new.status <> 'paused' then
    new.pause_reason := null;
  end if;
  if new.status = old.status then
    return new;
  end if;
  if new.status = 'draft' then
    raise exception 'campaign %: cannot go back to draft from %', old.campaign_id, old.status
      using errcode = 'check_violation';
  end if;
  if new.status = 'sending' and old.status <> 'queued' then
    raise exception 'campaign %: only a queued campaign starts sending (it is %); set it to queued',
      old.campaign_id, old.status using errcode = 'check_violation';
  end if;
  if new.status = 'paused' and old.status not in ('queued', 'sending') then
    raise exception 'campaign %: only a queued or sending campaign can be paused (it is %)',
      old.campaign_id, old.status using errcode = 'check_violation';
  end if;
  if new.status = 'done' and exists (
    select 1 from public.campaign_recipients
     where campaign_id = new.campaign_id and recipient_status in ('pending', 'sending')) then
    raise exception 'campaign %: cannot be done while recipients are pending or sending',
      old.campaign_id using errcode = 'check_violation';
  end if;
  return new;
end;
$$;

-- The worker's automatic pauses (failure-rate guard); the reputation guard and the outcome batch
-- pause in SQL themselves. Returns whether this call paused the campaign.
create or replace function public.auto_pause_campaign(p_campaign_id uuid, p_reason text)
  returns boolean language sql volatile as $$
  update public.campaigns set status = 'paused', pause_reason = p_reason
   where campaign_id = p_campaign_id and status in ('queued', 'sending')
  returning true;
$$;
comment on function public.auto_pause_campaign(uuid, text) is
  'Pauses a queued or sending campaign for p_reason (shown by campaign status/list); true when '
  'this call paused it.';

-- An operator's pause records who paused it, so `campaign status` never shows a bare "paused".
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
            hint = case when v_status = 'paused' then 'resume it with resume_campaign'
                        when v_status = 'draft' then 'queue it with queue_campaign' end;
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

-- Outcomes of one batch of sends. 'paused': SES refused for an account or configuration reason;
-- the recipient goes back to pending with no new job and its campaign pauses with that reason
-- (resuming enqueues it again). 'released': SES certainly did not take the message (refused
-- connection, throttling); the recipient gets a new job at p_retry_at.
create or replace function public.record_send_outcomes(
  p_campaign_ids uuid[], p_customer_ids uuid[], p_outcomes text[], p_message_ids text[],
  p_errors text[], p_retry_at timestamptz[])
  returns table (ord integer, recorded text) language plpgsql volatile as $$
#variable_conflict use_column
declare
  v_ords integer[];
  v_outcomes text[];
  v_campaign uuid;
  v_check uuid[] := '{}';
begin
  if exists (select 1 from unnest(p_outcomes) o
              where o is null or o not in ('sent', 'failed', 'in_doubt', 'released', 'paused')) then
    raise exception 'record_send_outcomes: unknown outcome in %', p_outcomes
      using errcode = 'invalid_parameter_value';
  end if;

  -- The outcome's commit does not wait for its WAL flush. Safe for at-most-once: the claim
  -- (status sending) was committed durably before the send, and graphile-worker's completion of
  -- the job, which comes after this commit, waits for the flush of everything before it. If the
  -- server crashes in between, both are lost, the job runs again and finds the recipient still
  -- sending: in doubt, never sent twice.
  perform set_config('synchronous_commit', 'off', true);

  with o as (
    select o.*, o.ord::integer as position
      from unnest(p_campaign_ids, p_customer_ids, p_outcomes, p_message_ids, p_errors, p_retry_at)
           with ordinality as o(campaign_id, customer_id, outcome, message_id, error, retry_at, ord)
  ), updated as (
    update public.campaign_recipients r
       set recipient_status = case when o.outcome in ('released', 'paused') then 'pending'
                                   else o.outcome end,
           ses_message_id = coalesce(o.message_id, r.ses_message_id),
           last_error = o.error, updated_at = now()
      from o
     where r.campaign_id = o.campaign_id and r.customer_id = o.customer_id
       and r.recipient_status in ('sending', 'in_doubt')
    returning o.position, o.outcome
  )
  select coalesce(array_agg(u.position), '{}'), coalesce(array_agg(u.outcome), '{}')
    into v_ords, v_outcomes
    from updated u;

  -- Only when there is something to add: add_jobs NOTIFYs even for nothing, and a NOTIFY takes a
  -- lock at commit that every other notifying transaction of the server waits for.
  if 'released' = any(v_outcomes) then
    perform graphile_worker.add_jobs(array(
      select row('send_recipient',
                 json_build_object('campaign_id', p_campaign_ids[u.position],
                                   'customer_id', p_customer_ids[u.position]),
                 null, coalesce(p_retry_at[u.position], now()), null, null, null,
                 null)::graphile_worker.job_spec
        from unnest(v_ords, v_outcomes) as u(position, outcome)
       where u.outcome = 'released'));
  end if;

  -- One reason per campaign: the first error of the batch that paused it.
  if 'paused' = any(v_outcomes) then
    update public.campaigns c set status = 'paused', pause_reason = p.reason
      from (select distinct on (p_campaign_ids[u.position])
                   p_campaign_ids[u.position] as campaign_id,
                   coalesce(p_errors[u.position], 'SES refused the send') as reason
              from unnest(v_ords, v_outcomes) as u(position, outcome)
             where u.outcome = 'paused'
             order by p_campaign_ids[u.position], u.position) p
     where c.campaign_id = p.campaign_id and c.status in ('queued', 'sending');
  end if;

  for v_campaign in
    select distinct p_campaign_ids[u.position]
      from unnest(v_ords, v_outcomes) as u(position, outcome)
     where u.outcome not in ('released', 'paused')
     order by 1
  loop
    perform pg_advisory_xact_lock_shared(7301, hashtext(v_campaign::text));
    if (select r.customer_id from public.campaign_recipients r
         where r.campaign_id = v_campaign and r.recipient_status = 'pending'
         order by r.campaign_id desc, r.customer_id desc limit 1) is null then
      v_check := v_check || v_campaign;
    end if;
  end loop;

  return query
  select k.ord::integer,
         case when u.position is null then 'unchanged'
              when u.outcome not in ('released', 'paused') and k.campaign_id = any(v_check)
                then 'recorded_check'
              else 'recorded' end
    from unnest(p_campaign_ids) with ordinality as k(campaign_id, ord)
    left join unnest(v_ords, v_outcomes) as u(position, outcome) on u.position = k.ord
   order by k.ord;
end;
$$;

-- An operator queues a campaign's failed recipients again (each gets one more attempt per call).
-- A done campaign goes back to queued (its enqueue trigger queues them); a queued or sending one
-- gets a job per recipient now; a paused one keeps them pending until it is resumed.
create or replace function public.retry_failed_recipients(p_campaign_id uuid,
                                                          p_reason text default null)
  returns integer language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
declare
  v_status text;
  v_customers uuid[];
begin
  select status into v_status from public.campaigns where campaign_id = p_campaign_id for update;
  if not found then
    raise exception 'retry_failed_recipients: no campaign %', p_campaign_id
      using errcode = 'no_data_found';
  end if;
  if v_status = 'draft' then
    raise exception 'retry_failed_recipients: campaign % is a draft; nothing was sent yet',
      p_campaign_id using errcode = 'check_violation';
  end if;
  -- Suppressed addresses stay failed: the claim would skip them anyway, and the list is the
  -- authority on who may be mailed.
  with retried as (
    update public.campaign_recipients r
       set recipient_status = 'pending', updated_at = now(),
           last_error = 'retry after failure: ' || coalesce(r.last_error, 'no reason recorded')
     where r.campaign_id = p_campaign_id and r.recipient_status = 'failed'
       and not exists (select 1 from public.suppression_list s where s.email = r.email)
    returning r.customer_id
  )
  select coalesce(array_agg(customer_id order by customer_id), '{}') into v_customers from retried;
  if cardinality(v_customers) = 0 then
    return 0;
  end if;
  if v_status = 'done' then
    update public.campaigns set status = 'queued' where campaign_id = p_campaign_id;
  elsif v_status in ('queued', 'sending') then
    perform graphile_worker.add_jobs(array(
      select row('send_recipient',
                 json_build_object('campaign_id', p_campaign_id, 'customer_id', c),
                 null, null, null, 'send_recipient:' || p_campaign_id || ':' || c,
                 null, null)::graphile_worker.job_spec
        from unnest(v_customers) as c), true);
  end if;
  perform public.record_operator_action('retry_failed', null, p_campaign_id, null, p_reason,
    jsonb_build_object('recipients', cardinality(v_customers), 'campaign_status', v_status));
  return cardinality(v_customers);
end;
$$;
comment on function public.retry_failed_recipients(uuid, text) is
  'Queues the failed (and not suppressed) recipients of a campaign again, once per call; '
  'recorded in operator_actions. Returns how many.';
revoke all on function public.retry_failed_recipients(uuid, text) from public;
grant all on function public.retry_failed_recipients(uuid, text) to mailer_operator;

-- The reputation guard records its reason on the campaign (it was only logged).
create or replace function public.check_campaign_reputation(
  p_campaign_id uuid, p_max_bounce_rate numeric, p_max_complaint_rate numeric, p_min_sent integer)
  returns text language plpgsql volatile as $$
declare
  v_status text;
  v_bounces integer;
  v_complaints integer;
  v_cap bigint;
  v_sent bigint;
  v_reason text;
begin
  if p_max_bounce_rate is null or p_max_bounce_rate <= 0
     or p_max_complaint_rate is null or p_max_complaint_rate <= 0 or p_min_sent is null then
    raise exception 'check_campaign_reputation: rates must be > 0 and min_sent set'
      using errcode = 'invalid_parameter_value';
  end if;
  -- The lock serialises concurrent checks of one campaign, so the last event's check counts every
  -- committed one and a threshold crossed by two simultaneous bounces is not missed. FOR NO KEY
  -- UPDATE, not FOR UPDATE: this transaction already holds FOR KEY SHARE on the row (the foreign
  -- key check of its email_events_op insert), and FOR UPDATE against another event's FOR KEY SHARE
  -- deadlocked concurrent bounces of one campaign (found by bench/events.ts).
  select status into v_status from public.campaigns where campaign_id = p_campaign_id for no key update;
  if v_status is null or v_status not in ('queued', 'sending') then
    return null;
  end if;

  -- Distinct recipients, so a redelivered or replayed event cannot count twice. Bounces from the
  -- account-level suppression list are left out: SES does not count them either.
  select count(distinct customer_id) filter (
           where event_type = 'bounce' and payload #>> '{bounce,bounceType}' = 'Permanent'
             and coalesce(payload #>> '{bounce,bounceSubType}', '') <> 'OnAccountSuppressionList'),
         count(distinct customer_id) filter (where event_type = 'complaint')
    into v_bounces, v_complaints
    from public.email_events_op
   where campaign_id = p_campaign_id and event_type in ('bounce', 'complaint');

  -- Counting every sent recipient of a big campaign on each bounce would be slow; the count only has
  -- to reach the point where no rate can be above its limit (sent >= bounces / max rate), or the
  -- minimum sample, whichever is larger. Below that cap the count is exact.
  v_cap := greatest(p_min_sent::numeric, ceil(v_bounces / p_max_bounce_rate),
                    ceil(v_complaints / p_max_complaint_rate))::bigint + 1;
  select count(*) into v_sent
    from (select 1 from public.campaign_recipients
           where campaign_id = p_campaign_id and ses_message_id is not null
           limit v_cap) s;
  if v_sent < p_min_sent or v_sent = 0 then
    return null;
  end if;

  if v_bounces::numeric / v_sent > p_max_bounce_rate then
    v_reason := format('permanent bounce rate %s%% (%s of %s sent) is above the %s%% limit',
                       round(100.0 * v_bounces / v_sent, 2), v_bounces, v_sent,
                       round(100 * p_max_bounce_rate, 3));
  elsif v_complaints::numeric / v_sent > p_max_complaint_rate then
    v_reason := format('complaint rate %s%% (%s of %s sent) is above the %s%% limit',
                       round(100.0 * v_complaints / v_sent, 3), v_complaints, v_sent,
                       round(100 * p_max_complaint_rate, 3));
  else
    return null;
  end if;
  update public.campaigns set status = 'paused', pause_reason = v_reason
   where campaign_id = p_campaign_id;
  return v_reason;
end;
$$;
