--! Previous: sha1:5a256751bbead62d4e70d820a280f2da5a4ca99e
--! Hash: sha1:27e64e1b1e34d115c2cd6755a8d91c825743f0f9
--! Message: Automatic pauses in the audit trail

--! split: 1-current.sql
-- Automatic pauses in the audit trail: the failure-rate guard (auto_pause_campaign), the
-- reputation guard (check_campaign_reputation) and an SES error that stops the whole campaign
-- (record_send_outcomes) paused a campaign with only its pause_reason, so the console's audit log
-- and operator_actions showed an operator's pause but not the system's. Each now records an
-- auto_pause row in the same transaction as the pause: actor mailer:<guard>, the reason as its
-- note, details.automatic true (as auto_resend).

alter table public.operator_actions drop constraint if exists operator_actions_action_check;
alter table public.operator_actions add constraint operator_actions_action_check check (action in (
  'activate_template', 'add_template', 'deactivate_template', 'enqueue_generate_campaign',
  'pause_campaign', 'queue_campaign', 'resolve_in_doubt', 'resume_campaign', 'retry_failed',
  'retry_jobs', 'suppress', 'unsuppress', 'auto_resend', 'schedule_campaign',
  'unschedule_campaign', 'delete_campaign', 'test_send', 'console_login', 'console_login_failed',
  'console_logout', 'console_user_add', 'console_user_remove', 'export_suppressions',
  'queue_requested', 'queue_approved', 'auto_pause'));

create or replace function public.record_automatic_pause(p_campaign_id uuid, p_reason text,
                                                         p_guard text)
  returns bigint
  language sql volatile as $$
  insert into public.operator_actions (action, campaign_id, note, details, actor)
  values ('auto_pause', p_campaign_id, p_reason,
          jsonb_build_object('automatic', true, 'guard', p_guard), 'mailer:' || p_guard)
  returning action_id;
$$;
comment on function public.record_automatic_pause(uuid, text, text) is
  'Records a pause mailer made by itself (p_guard: failure-guard, reputation-guard, ses-error) in '
  'operator_actions: action auto_pause, actor mailer:<p_guard>, the reason as its note.';

create or replace function public.auto_pause_campaign(p_campaign_id uuid, p_reason text)
  returns boolean
  language sql volatile as $$
  with paused as (
    update public.campaigns set status = 'paused', pause_reason = p_reason
     where campaign_id = p_campaign_id and status in ('queued', 'sending')
    returning campaign_id)
  select public.record_automatic_pause(p.campaign_id, p_reason, 'failure-guard') is not null
    from paused p;
$$;
comment on function public.auto_pause_campaign(uuid, text) is
  'Pauses a queued or sending campaign for p_reason (shown by campaign status/list), recorded as '
  'auto_pause by mailer:failure-guard; true when this call paused it.';

create or replace function public.check_campaign_reputation(p_campaign_id uuid,
                                                            p_max_bounce_rate numeric,
                                                            p_max_complaint_rate numeric,
                                                            p_min_sent integer)
  returns text
  language plpgsql volatile as $$
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
  perform public.record_automatic_pause(p_campaign_id, v_reason, 'reputation-guard');
  return v_reason;
end;
$$;


create or replace function public.record_send_outcomes(p_campaign_ids uuid[], p_customer_ids uuid[],
                                                       p_attempts integer[], p_outcomes text[],
                                                       p_message_ids text[], p_errors text[],
                                                       p_retry_at timestamptz[])
  returns table (ord integer, recorded text)
  language plpgsql volatile as $$
#variable_conflict use_column
declare
  v_ords integer[];
  v_outcomes text[];
  v_stale integer[] := '{}';
  v_campaign uuid;
  v_check uuid[] := '{}';
  v_recorded integer;
begin
  if exists (select 1 from unnest(p_outcomes) o
              where o is null or o not in ('sent', 'failed', 'in_doubt', 'released', 'paused')) then
    raise exception 'record_send_outcomes: unknown outcome in %', p_outcomes
      using errcode = 'invalid_parameter_value';
  end if;
  if cardinality(p_attempts) is distinct from cardinality(p_campaign_ids)
     or array_position(p_attempts, null) is not null then
    raise exception 'record_send_outcomes: every outcome names its attempt (the claim''s '
                    'attempt_count), got %', p_attempts
      using errcode = 'invalid_parameter_value';
  end if;

  -- The outcome's commit does not wait for its WAL flush. Safe for at-most-once: the claim
  -- (status sending) was committed durably before the send, and graphile-worker's completion of
  -- the job, which comes after this commit, waits for the flush of everything before it. If the
  -- server crashes in between, both are lost, the job runs again and finds the recipient still
  -- sending: in doubt, never sent twice.
  perform set_config('synchronous_commit', 'off', true);

  -- Campaigns this batch may pause: their rows before any recipient's (the lock order).
  if 'paused' = any(p_outcomes) then
    perform 1 from public.campaigns c
     where c.campaign_id in (select p_campaign_ids[i] from generate_subscripts(p_outcomes, 1) i
                              where p_outcomes[i] = 'paused')
     order by c.campaign_id
       for no key update;
  end if;

  -- Only the claim the outcome belongs to: same attempt, still sending or in doubt (a claim the
  -- sweep or release_dead_workers put in doubt still takes its real outcome).
  with o as (
    select o.*, o.ord::integer as position
      from unnest(p_campaign_ids, p_customer_ids, p_attempts, p_outcomes, p_message_ids, p_errors,
                  p_retry_at)
           with ordinality as o(campaign_id, customer_id, attempt, outcome, message_id, error,
                                retry_at, ord)
  ), updated as (
    update public.campaign_recipients r
       set recipient_status = case when o.outcome in ('released', 'paused') then 'pending'
                                   else o.outcome end,
           ses_message_id = coalesce(o.message_id, r.ses_message_id),
           last_error = o.error, updated_at = now()
      from o
     where r.campaign_id = o.campaign_id and r.customer_id = o.customer_id
       and r.recipient_status in ('sending', 'in_doubt')
       and r.attempt_count = o.attempt
    returning o.position, o.outcome
  )
  select coalesce(array_agg(u.position), '{}'), coalesce(array_agg(u.outcome), '{}')
    into v_ords, v_outcomes
    from updated u;

  -- Stale: the recipient has been claimed again since (a resend); the caller logs and drops it.
  if cardinality(v_ords) < cardinality(p_campaign_ids) then
    select coalesce(array_agg(k.ord::integer), '{}') into v_stale
      from unnest(p_campaign_ids, p_customer_ids, p_attempts)
           with ordinality as k(campaign_id, customer_id, attempt, ord)
      join public.campaign_recipients r
        on r.campaign_id = k.campaign_id and r.customer_id = k.customer_id
     where r.attempt_count <> k.attempt and not (k.ord::integer = any(v_ords));
  end if;

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
    with paused as (
      update public.campaigns c set status = 'paused', pause_reason = p.reason
        from (select distinct on (p_campaign_ids[u.position])
                     p_campaign_ids[u.position] as campaign_id,
                     coalesce(p_errors[u.position], 'SES refused the send') as reason
                from unnest(v_ords, v_outcomes) as u(position, outcome)
               where u.outcome = 'paused'
               order by p_campaign_ids[u.position], u.position) p
       where c.campaign_id = p.campaign_id and c.status in ('queued', 'sending')
      returning c.campaign_id, c.pause_reason)
    select count(public.record_automatic_pause(d.campaign_id, d.pause_reason, 'ses-error'))
      into v_recorded from paused d;
  end if;

  -- Shared "finishing" locks in campaign_id order (the lock order), so that
  -- finish_campaign_if_complete waits for the outcomes being recorded here.
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
         case when k.ord::integer = any(v_stale) then 'stale'
              when u.position is null then 'unchanged'
              when u.outcome not in ('released', 'paused') and k.campaign_id = any(v_check)
                then 'recorded_check'
              else 'recorded' end
    from unnest(p_campaign_ids) with ordinality as k(campaign_id, ord)
    left join unnest(v_ords, v_outcomes) as u(position, outcome) on u.position = k.ord
   order by k.ord;
end;
$$;
