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

--------------------------------------------------------------------------------------------------
-- apply_ses_event: one SES event, one transaction. The event is always recorded (an unknown message
-- too, with null ids); its effect on the recipient and the suppression list is conditional on the
-- current state, so applying the same event again changes nothing but adds a second event row.

create function public.apply_ses_event(
  p_event jsonb, p_max_bounce_rate numeric, p_max_complaint_rate numeric, p_min_sent integer,
  out event_id uuid, out event_type text, out ses_message_id text, out campaign_id uuid,
  out customer_id uuid, out effect text, out paused_reason text
) returns record
  language plpgsql volatile as $$
#variable_conflict use_column
declare
  c_uuid constant text := '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
  v_type text := public.ses_event_type(p_event);
  v_mail jsonb := coalesce(p_event -> 'mail', '{}');
  v_message_id text := nullif(btrim(p_event #>> '{mail,messageId}'), '');
  v_detail jsonb;
  v_addresses text[];
  v_recipient public.campaign_recipients;
  v_campaign_tag text;
  v_customer_tag text;
  v_error text;
  v_effect text := 'none';
  v_count integer;
  v_event_id uuid;
begin
  if v_type is null then
    raise exception 'apply_ses_event: unknown SES event type %',
      coalesce(p_event ->> 'eventType', p_event ->> 'notificationType', '(none)')
      using errcode = 'invalid_parameter_value';
  end if;
  v_detail := coalesce(p_event -> (case v_type when 'rendering_failure' then 'failure'
                                               when 'delivery_delay' then 'deliveryDelay'
                                               else v_type end), '{}');
  v_addresses := public.ses_event_addresses(p_event, v_type);

  -- The recipient: by the message id SES returned to send_recipient; failing that (the send's
  -- outcome was never recorded, e.g. in_doubt) by the campaign_id/customer_id tags we sent.
  if v_message_id is not null then
    select * into v_recipient from public.campaign_recipients r
     where r.ses_message_id = v_message_id for update;
  end if;
  if v_recipient.campaign_id is null then
    v_campaign_tag := coalesce(v_mail #>> '{tags,campaign_id,0}', v_mail #>> '{tags,campaign_id}');
    v_customer_tag := coalesce(v_mail #>> '{tags,customer_id,0}', v_mail #>> '{tags,customer_id}');
    if v_campaign_tag ~* c_uuid and v_customer_tag ~* c_uuid then
      select * into v_recipient from public.campaign_recipients r
       where r.campaign_id = v_campaign_tag::uuid and r.customer_id = v_customer_tag::uuid
         for update;
    end if;
  end if;

  if v_type in ('send', 'delivery') then
    -- SES has the message: whatever the worker could not record (in_doubt), it was sent.
    update public.campaign_recipients
       set recipient_status = 'sent', ses_message_id = coalesce(ses_message_id, v_message_id),
           last_error = null
     where campaign_id = v_recipient.campaign_id and customer_id = v_recipient.customer_id
       and recipient_status in ('sending', 'in_doubt');
    if found then v_effect := 'recipient sent'; end if;

  elsif v_type = 'bounce' and v_detail ->> 'bounceType' = 'Permanent' then
    insert into public.suppression_list (email, reason, source)
    select a, 'bounce_hard', 'ses' from unnest(v_addresses) a
    on conflict (email) do nothing;
    get diagnostics v_count = row_count;
    v_error := format('permanent bounce (%s): %s', v_detail ->> 'bounceSubType',
                      coalesce(v_detail #>> '{bouncedRecipients,0,diagnosticCode}', 'no diagnostic'));
    update public.campaign_recipients
       set recipient_status = 'bounced', ses_message_id = coalesce(ses_message_id, v_message_id),
           last_error = v_error
     where campaign_id = v_recipient.campaign_id and customer_id = v_recipient.customer_id
       and recipient_status in ('sending', 'sent', 'in_doubt');
    v_effect := format('%s; %s address(es) newly suppressed',
                       case when found then 'recipient bounced' else 'recipient unchanged' end, v_count);

  elsif v_type = 'complaint' then
    insert into public.suppression_list (email, reason, source)
    select a, 'complaint', 'ses' from unnest(v_addresses) a
    on conflict (email) do nothing;
    get diagnostics v_count = row_count;
    update public.campaign_recipients
       set recipient_status = 'complained', ses_message_id = coalesce(ses_message_id, v_message_id),
           last_error = format('complaint (%s)', coalesce(v_detail ->> 'complaintFeedbackType', 'no type'))
     where campaign_id = v_recipient.campaign_id and customer_id = v_recipient.customer_id
       and recipient_status in ('sending', 'sent', 'in_doubt', 'unsubscribed');
    v_effect := format('%s; %s address(es) newly suppressed',
                       case when found then 'recipient complained' else 'recipient unchanged' end, v_count);

  elsif v_type in ('reject', 'rendering_failure') then
    update public.campaign_recipients
       set recipient_status = 'failed', ses_message_id = coalesce(ses_message_id, v_message_id),
           last_error = case v_type
             when 'reject' then format('rejected by SES: %s', coalesce(v_detail ->> 'reason', 'no reason'))
             else format('rendering failure: %s', coalesce(v_detail ->> 'errorMessage', 'no message')) end
     where campaign_id = v_recipient.campaign_id and customer_id = v_recipient.customer_id
       and recipient_status in ('sending', 'sent', 'in_doubt');
    if found then v_effect := 'recipient failed'; end if;

  elsif v_type = 'subscription' and (v_detail #>> '{newTopicPreferences,unsubscribeAll}') = 'true' then
    -- The recipient opted out of everything through SES subscription management: as binding as
    -- our own unsubscribe link.
    insert into public.suppression_list (email, reason, source)
    select a, 'unsubscribe', 'user' from unnest(v_addresses) a
    on conflict (email) do nothing;
    get diagnostics v_count = row_count;
    update public.campaign_recipients
       set recipient_status = 'unsubscribed', last_error = null
     where campaign_id = v_recipient.campaign_id and customer_id = v_recipient.customer_id
       and recipient_status in ('sent', 'in_doubt');
    v_effect := format('%s; %s address(es) newly suppressed',
                       case when found then 'recipient unsubscribed' else 'recipient unchanged' end, v_count);
  end if;

  insert into public.email_events_op (event_type, email, campaign_id, customer_id, ses_message_id,
                                      event_time, payload)
  values (v_type, coalesce(v_recipient.email, v_addresses[1]), v_recipient.campaign_id,
          v_recipient.customer_id, v_message_id,
          coalesce(coalesce(v_detail ->> 'timestamp', v_mail ->> 'timestamp')::timestamptz, now()),
          p_event)
  returning event_id into v_event_id;

  if v_recipient.campaign_id is not null
     and (v_type = 'complaint' or (v_type = 'bounce' and v_detail ->> 'bounceType' = 'Permanent')) then
    paused_reason := public.check_campaign_reputation(v_recipient.campaign_id, p_max_bounce_rate,
                                                      p_max_complaint_rate, p_min_sent);
  end if;

  event_id := v_event_id;
  event_type := v_type;
  ses_message_id := v_message_id;
  campaign_id := v_recipient.campaign_id;
  customer_id := v_recipient.customer_id;
  effect := case when v_recipient.campaign_id is null then 'unmatched; ' else '' end || v_effect;
end;
$$;
comment on function public.apply_ses_event(jsonb, numeric, numeric, integer) is
  'Records one SES event in email_events_op and applies its effect: permanent bounce -> suppression '
  '(bounce_hard) + bounced; complaint -> suppression (complaint) + complained; send/delivery -> '
  'sending/in_doubt become sent; reject/rendering failure -> failed; subscription unsubscribeAll -> '
  'suppression (unsubscribe) + unsubscribed; others are recorded only. Runs the reputation guard '
  'after bounces and complaints; paused_reason says why it paused the campaign.';

--------------------------------------------------------------------------------------------------
-- Unsubscribe links. The token only ever unsubscribes the address it was made for. GET shows the
-- state (link scanners follow GETs, so they must change nothing); POST unsubscribes.

create function public.unsubscribe_token_status(p_token_id uuid, out outcome text, out email text)
  returns record
  language sql stable as $$
  select coalesce(s.outcome, 'unknown'), s.email
    from (select 1) one
    left join lateral (
      select case when t.used_at is not null then 'already'
                  when t.expires_at <= now() then 'expired'
                  else 'valid' end as outcome,
             t.email
        from public.unsubscribe_tokens t where t.token_id = p_token_id) s on true;
$$;
comment on function public.unsubscribe_token_status(uuid) is
  'What an unsubscribe link would do, changing nothing: valid | already | expired | unknown, and its address.';

-- p_method says how the user confirmed (one_click: RFC 8058 POST from the mail client; form: our
-- confirmation page); it is kept in the event for support.
create function public.unsubscribe_by_token(p_token_id uuid, p_method text, out outcome text, out email text)
  returns record
  language plpgsql volatile as $$
#variable_conflict use_column
declare
  t public.unsubscribe_tokens;
  v_customer_id uuid;
begin
  if p_method is null or p_method not in ('one_click', 'form') then
    raise exception 'unsubscribe_by_token: unknown method %', p_method using errcode = 'invalid_parameter_value';
  end if;
  select * into t from public.unsubscribe_tokens where token_id = p_token_id for update;
  if not found then
    outcome := 'unknown';
    return;
  end if;
  email := t.email;
  -- A used token stays harmless after expiry too: the answer is "already", never an error.
  if t.used_at is not null then
    outcome := 'already';
    return;
  end if;
  if t.expires_at <= now() then
    outcome := 'expired';
    return;
  end if;

  -- The suppression trigger stops this address's pending recipients in every campaign.
  insert into public.suppression_list (email, reason, source)
  values (t.email, 'unsubscribe', 'user')
  on conflict (email) do nothing;
  update public.unsubscribe_tokens set used_at = now() where token_id = p_token_id;
  -- 'sending' is left alone: the worker is between claim and outcome, and record_send_result only
  -- records an outcome for sending/in_doubt rows. The suppression already stops anything later.
  update public.campaign_recipients r
     set recipient_status = 'unsubscribed', last_error = null
   where r.campaign_id = t.campaign_id and r.email = t.email
     and r.recipient_status in ('pending', 'sent', 'in_doubt', 'failed', 'suppressed');
  select r.customer_id into v_customer_id from public.campaign_recipients r
   where r.campaign_id = t.campaign_id and r.email = t.email;
  insert into public.email_events_op (event_type, email, campaign_id, customer_id, payload)
  values ('unsubscribe', t.email, t.campaign_id, v_customer_id,
          jsonb_build_object('source', 'unsubscribe_link', 'method', p_method));
  outcome := 'unsubscribed';
end;
$$;
comment on function public.unsubscribe_by_token(uuid, text) is
  'Unsubscribes the token''s address: suppression (unsubscribe, user), token used, the campaign''s '
  'recipient unsubscribed, an unsubscribe event. Returns unsubscribed | already | expired | unknown; '
  'a second use changes nothing.';
