-- SES events and compliance (rerun-safe: drop ... if exists, create or replace)
-- SNS deliveries in (deduplicated by MessageId), SES events applied to recipients and the
-- suppression list, the per-campaign reputation guard, and one-click unsubscribe.
drop function if exists public.unsubscribe_by_token(uuid, text);
drop function if exists public.unsubscribe_token_status(uuid);
drop function if exists public.apply_ses_event(jsonb, numeric, numeric, integer);
drop function if exists public.check_campaign_reputation(uuid, numeric, numeric, integer);
drop function if exists public.ses_event_addresses(jsonb, text);
drop function if exists public.ses_event_type(jsonb);
drop function if exists public.record_sns_notification(text, text, json);
drop table if exists public.sns_messages;

--------------------------------------------------------------------------------------------------
-- SNS deliveries: SNS delivers at least once, and a redelivery carries the same MessageId. A job
-- key would not do: graphile-worker forgets a key once its job completes, and redeliveries can
-- arrive after that. So every MessageId we accepted is remembered here.

create table public.sns_messages (
  sns_message_id text primary key,
  topic_arn text not null,
  received_at timestamptz not null default now(),
  constraint sns_messages_message_id_not_blank check (btrim(sns_message_id) <> '')
);
comment on table public.sns_messages is
  'Every verified SNS Notification accepted by POST /webhooks/ses, so a redelivery is processed once. '
  'Rows older than SNS''s retry window (at most hours) may be deleted.';
comment on column public.sns_messages.sns_message_id is 'SNS MessageId (the same on every redelivery).';
comment on column public.sns_messages.topic_arn is 'Topic the notification came from (already checked against SNS_TOPIC_ARNS).';
comment on column public.sns_messages.received_at is 'When it was first accepted; retention works on this.';
create index sns_messages_received_at_idx on public.sns_messages (received_at);

create function public.record_sns_notification(
  p_message_id text, p_topic_arn text, p_envelope json
) returns boolean
  language plpgsql volatile as $$
begin
  insert into public.sns_messages (sns_message_id, topic_arn)
  values (p_message_id, p_topic_arn)
  on conflict (sns_message_id) do nothing;
  if not found then
    return false;
  end if;
  perform graphile_worker.add_job('process_ses_event', p_envelope);
  return true;
end;
$$;
comment on function public.record_sns_notification(text, text, json) is
  'Remembers a verified SNS Notification and enqueues process_ses_event with the envelope, in the '
  'caller''s transaction. Returns false (and does nothing) when the MessageId was seen before.';

--------------------------------------------------------------------------------------------------
-- Reading SES events. Configuration-set event publishing says eventType, identity notifications
-- say notificationType; the detail object is named after the type (with two exceptions).

create function public.ses_event_type(p_event jsonb) returns text
  language sql immutable as $$
  select case coalesce(p_event ->> 'eventType', p_event ->> 'notificationType')
    when 'Send' then 'send'
    when 'Delivery' then 'delivery'
    when 'Bounce' then 'bounce'
    when 'Complaint' then 'complaint'
    when 'Reject' then 'reject'
    when 'Open' then 'open'
    when 'Click' then 'click'
    when 'Rendering Failure' then 'rendering_failure'
    when 'DeliveryDelay' then 'delivery_delay'
    when 'Subscription' then 'subscription'
  end;
$$;
comment on function public.ses_event_type(jsonb) is
  'The email_events_op.event_type of an SES event (eventType or notificationType), null when unknown.';

-- Addresses the event is about, bare and lowercase: the detail's recipient list when it has one
-- ("Name <a@b>" is reduced to a@b), otherwise mail.destination.
create function public.ses_event_addresses(p_event jsonb, p_type text) returns text[]
  language sql immutable as $$
  with listed as (
    select case p_type
             when 'bounce' then p_event #> '{bounce,bouncedRecipients}'
             when 'complaint' then p_event #> '{complaint,complainedRecipients}'
             when 'delivery_delay' then p_event #> '{deliveryDelay,delayedRecipients}'
             when 'delivery' then p_event #> '{delivery,recipients}'
           end as list
  ), raw as (
    select coalesce(e ->> 'emailAddress', e #>> '{}') as address
      from listed,
           jsonb_array_elements(case when jsonb_typeof(listed.list) = 'array' then listed.list
                                     else '[]' end) e
    union all
    -- Only when the detail names nobody.
    select d #>> '{}'
      from jsonb_array_elements(case when jsonb_typeof(p_event #> '{mail,destination}') = 'array'
                                     then p_event #> '{mail,destination}' else '[]' end) d
     where not exists (select 1 from listed
                        where jsonb_typeof(listed.list) = 'array' and jsonb_array_length(listed.list) > 0)
  )
  select coalesce(array_agg(distinct a), '{}')
    from raw, lateral (select lower(btrim(coalesce(substring(address from '<([^<>]+)>'), address)))) x(a)
   where a like '%_@_%';
$$;
comment on function public.ses_event_addresses(jsonb, text) is
  'Recipient addresses an SES event is about (bare, lowercase), from its detail or mail.destination.';

--------------------------------------------------------------------------------------------------
-- Reputation guard. SES reviews an account at 5% bounces or 0.1% complaints; one bad list can get
-- there, so a campaign whose own rates cross the (lower) configured limits is paused. Resuming is
-- an operator decision: set it back to queued.

create function public.check_campaign_reputation(
  p_campaign_id uuid, p_max_bounce_rate numeric, p_max_complaint_rate numeric, p_min_sent integer
) returns text
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
  -- committed one and a threshold crossed by two simultaneous bounces is not missed.
  select status into v_status from public.campaigns where campaign_id = p_campaign_id for update;
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
  update public.campaigns set status = 'paused' where campaign_id = p_campaign_id;
  return v_reason;
end;
$$;
comment on function public.check_campaign_reputation(uuid, numeric, numeric, integer) is
  'Pauses a queued/sending campaign whose permanent-bounce or complaint rate over its sent '
  'recipients (ses_message_id set) is above the given fraction, once p_min_sent were sent. '
  'Returns why it paused it, or null.';
