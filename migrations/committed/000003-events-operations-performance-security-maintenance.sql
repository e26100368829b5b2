--! Previous: sha1:551f7271865573d391b4f80bd161d81a42bb30e3
--! Hash: sha1:71dc18d4467eb713bbd8791e9a53c661867c5083
--! Message: events, operations, performance, security, maintenance

--! split: 1-current.sql
-- Enter migration here (rerun-safe: drop ... if exists, create or replace)

--! split: 2-events.sql
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

--! split: 3-operations.sql
-- Operations (rerun-safe: drop ... if exists first, in reverse dependency order; then create).
-- What the people who run mailer do, as SQL functions the CLI calls and psql users call directly:
-- customer import, templates, campaign control, suppression, jobs, in-doubt recipients, and the
-- recurring housekeeping (token expiry, event retention, in-doubt reconciliation).
-- Functions an operator calls from psql that need graphile_worker privileges or write the audit
-- trail are SECURITY DEFINER with a pinned search_path, and EXECUTE is revoked from PUBLIC: grant it
-- to the operators' role (see README, "Operations with psql").
drop function if exists public.delete_exported_events(uuid[], text, text, bigint);
drop function if exists public.expire_unsubscribe_tokens(interval, integer);
drop function if exists public.reconcile_in_doubt();
drop function if exists public.in_doubt_recipients(interval);
drop function if exists public.resolve_in_doubt(uuid, uuid, text, text);
drop function if exists public.failed_jobs(text, integer);
drop function if exists public.job_queue_summary();
drop function if exists public.retry_failed_jobs(text);
drop function if exists public.retry_job(bigint);
drop function if exists public.unsuppress_email(text, text, boolean);
drop function if exists public.suppress_email(text, text, text);
drop function if exists public.campaign_progress(uuid);
drop function if exists public.enqueue_generate_campaign(integer, date, boolean);
drop function if exists public.resume_campaign(uuid);
drop function if exists public.pause_campaign(uuid);
drop function if exists public.queue_campaign(uuid);
drop function if exists public.set_campaign_status(uuid, text, text[], text);
drop function if exists public.deactivate_template(uuid);
drop function if exists public.activate_template(uuid);
drop function if exists public.add_template(text, text, integer, integer, text, text, text, boolean);
drop function if exists public.apply_customer_import(boolean);
drop function if exists public.customer_import_problems();
drop function if exists public.customer_import_summary();
drop function if exists public.begin_customer_import();
drop function if exists public.record_operator_action(text, text, uuid, uuid, text, jsonb);
drop function if exists public.parse_boolean(text);
drop function if exists public.email_problem(text);
drop function if exists public.normalize_email(text);
drop table if exists public.email_event_exports;
drop table if exists public.operator_actions;

--------------------------------------------------------------------------------------------------
-- Audit trail: every deliberate operator act (CLI or psql) leaves a row here, next to its log line.

create table public.operator_actions (
  action_id bigint generated always as identity primary key,
  action text not null,
  email text,
  campaign_id uuid references public.campaigns (campaign_id) on delete set null,
  customer_id uuid references public.customers (customer_id) on delete set null,
  note text,
  details jsonb not null default '{}',
  db_user text not null default session_user,
  application_name text not null default coalesce(current_setting('application_name', true), ''),
  created_at timestamptz not null default now(),
  constraint operator_actions_action_check check (action in (
    'suppress', 'unsuppress', 'queue_campaign', 'pause_campaign', 'resume_campaign',
    'enqueue_generate_campaign', 'retry_jobs', 'resolve_in_doubt', 'add_template',
    'activate_template', 'deactivate_template'))
);
comment on table public.operator_actions is 'Audit trail of operator acts (unsuppress, in-doubt decisions, job retries, campaign control), whoever made them: CLI or psql.';
comment on column public.operator_actions.action_id is 'Primary key, in the order the acts happened.';
comment on column public.operator_actions.action is 'What was done (see the check constraint).';
comment on column public.operator_actions.email is 'Address acted on, when the act is about one.';
comment on column public.operator_actions.campaign_id is 'Campaign acted on, when the act is about one.';
comment on column public.operator_actions.customer_id is 'Customer acted on, when the act is about one.';
comment on column public.operator_actions.note is 'Why, in the operator''s words (required for unsuppress).';
comment on column public.operator_actions.details is 'What the act changed (previous suppression, job ids, decision, ...).';
comment on column public.operator_actions.db_user is 'Database login that made the change (session_user, also under SECURITY DEFINER).';
comment on column public.operator_actions.application_name is 'Client that made it: mailer-cli (with the OS user), psql, ...';
comment on column public.operator_actions.created_at is 'When.';
create index operator_actions_email_idx on public.operator_actions (email, created_at desc) where email is not null;
create index operator_actions_campaign_id_idx on public.operator_actions (campaign_id) where campaign_id is not null;
create index operator_actions_customer_id_idx on public.operator_actions (customer_id) where customer_id is not null;

create function public.record_operator_action(
  p_action text, p_email text, p_campaign_id uuid, p_customer_id uuid, p_note text, p_details jsonb
) returns bigint
  language sql volatile as $$
  insert into public.operator_actions (action, email, campaign_id, customer_id, note, details)
  values (p_action, p_email, p_campaign_id, p_customer_id, nullif(btrim(p_note), ''),
          coalesce(p_details, '{}'))
  returning action_id;
$$;
comment on function public.record_operator_action(text, text, uuid, uuid, text, jsonb) is
  'Appends one row to operator_actions; called by the operator functions in the same transaction as their change.';

--------------------------------------------------------------------------------------------------
-- Addresses. One rule for "looks like an address we can send to", used by the CSV import and the
-- suppression functions. Stricter than the customers check constraint on purpose: SES takes ASCII
-- local parts and (punycode) domain names only, and a customer list has no use for user@localhost.

create function public.normalize_email(p_email text) returns text
  language sql immutable parallel safe as $$
  select lower(btrim(p_email, e' \t\r\n'));
$$;
comment on function public.normalize_email(text) is
  'An address as it is stored: surrounding whitespace removed, lowercase.';

-- plpgsql, so the address is normalised and split once per call: an inlined SQL CASE repeats
-- those for every branch and costs four times as much per million imported rows. Cheap string
-- checks come first; the regexes avoid bounded repetitions like {0,61}, which make PostgreSQL's
-- regex engine an order of magnitude slower.
create function public.email_problem(p_email text) returns text
  language plpgsql immutable parallel safe as $$
declare
  e text := public.normalize_email(p_email);
  v_at integer;
  v_local text;
  v_domain text;
begin
  if e is null or e = '' then return 'empty email'; end if;
  v_at := strpos(e, '@');
  if v_at = 0 then return 'no @'; end if;
  v_local := left(e, v_at - 1);
  v_domain := substr(e, v_at + 1);
  if strpos(v_domain, '@') > 0 then return 'more than one @'; end if;
  if e ~ '\s' then return 'contains whitespace'; end if;
  if length(e) > 254 then return 'longer than 254 characters'; end if;
  if v_local = '' then return 'nothing before the @'; end if;
  if v_domain = '' then return 'nothing after the @'; end if;
  if length(v_local) > 64 then return 'more than 64 characters before the @'; end if;
  if v_local !~ '^[a-z0-9!#$%&''*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&''*+/=?^_`{|}~-]+)*$' then
    return 'invalid characters or dots before the @';
  end if;
  if strpos(v_domain, '.') = 0 then return 'domain has no dot'; end if;
  if v_domain !~ '^[a-z0-9-]+(\.[a-z0-9-]+)+$' or v_domain ~ '(^|\.)-|-(\.|$)' then
    return 'invalid domain';
  end if;
  if length(v_domain) > 63 and v_domain ~ '[^.]{64}' then
    return 'domain label longer than 63 characters';
  end if;
  return null;
end;
$$;
comment on function public.email_problem(text) is
  'Why an address (normalised first) cannot be mailed, or null when it looks sendable: one readable reason.';

create function public.parse_boolean(p_value text) returns boolean
  language sql immutable parallel safe as $$
  select case lower(btrim(p_value))
    when 'true' then true when 't' then true when 'yes' then true when 'y' then true when '1' then true
    when 'false' then false when 'f' then false when 'no' then false when 'n' then false when '0' then false
  end;
$$;
comment on function public.parse_boolean(text) is
  'true/t/yes/y/1 and false/f/no/n/0 (any case); null for anything else.';

--------------------------------------------------------------------------------------------------
-- Customer import (mailer customers import FILE.csv). The client COPYs every CSV record into a
-- session-local staging table, problems it found itself (wrong field count, NUL bytes) included;
-- normalisation and validation happen here, as generated columns, so each row is written once.
-- Duplicates are found set-based; the first occurrence of an address wins.

create function public.begin_customer_import() returns void
  language plpgsql volatile as $$
begin
  drop table if exists pg_temp.customer_import;
  create temp table customer_import (
    line integer not null,
    raw_email text,
    name text,
    company text,
    country text,
    is_active text,
    csv_problem text,
    email text generated always as (public.normalize_email(raw_email)) stored,
    problem text generated always as (coalesce(
      csv_problem,
      public.email_problem(raw_email),
      case when is_active is not null and public.parse_boolean(is_active) is null
           then 'is_active must be true/false, yes/no or 1/0' end)) stored
  );
end;
$$;
comment on function public.begin_customer_import() is
  'Creates (or empties) the session''s pg_temp.customer_import staging table. COPY into it '
  '(line, raw_email, name, company, country, is_active, csv_problem), then call '
  'analyze it, then call customer_import_summary(), apply_customer_import() and '
  'customer_import_problems() on the same connection.';

create function public.customer_import_summary(
  out rows_read bigint, out valid bigint, out invalid bigint, out duplicates bigint
) returns record
  language plpgsql stable
  set work_mem = '64MB' as $$
begin
  -- plpgsql, not sql: the staging table exists only in the importing session, at run time.
  select count(*),
         count(*) filter (where s.problem is null and s.first),
         count(*) filter (where s.problem is not null),
         count(*) filter (where s.problem is null and not s.first)
    into rows_read, valid, invalid, duplicates
    from (select i.problem,
                 i.line = min(i.line) filter (where i.problem is null) over (partition by i.email) as first
            from pg_temp.customer_import i) s;
end;
$$;
comment on function public.customer_import_summary() is
  'Counts of the staged import: rows read, valid (to import), invalid, and duplicates of an earlier line.';

create function public.customer_import_problems()
  returns table (line integer, problem text, value text)
  language plpgsql stable
  set work_mem = '64MB' as $$
begin
  return query
  select s.line,
         coalesce(s.problem, format('duplicate of line %s', s.first_line)),
         s.raw_email
    from (select i.line, i.problem, i.raw_email,
                 min(i.line) filter (where i.problem is null) over (partition by i.email) as first_line
            from pg_temp.customer_import i) s
   where s.problem is not null or s.line > s.first_line
   order by s.line;
end;
$$;
comment on function public.customer_import_problems() is
  'Rejected lines of the staged import with the reason, in file order (read it with a cursor: it can be long).';

-- p_set_is_active: the file has an is_active column. Without one, existing customers keep their
-- flag and new ones are active; with one, the file decides.
create function public.apply_customer_import(
  p_set_is_active boolean, out inserted bigint, out updated bigint, out unchanged bigint
) returns record
  language plpgsql volatile
  -- The distinct-on sort of a million rows fits in memory instead of spilling to disk.
  set work_mem = '64MB' as $$
declare
  v_valid bigint;
begin
  select count(distinct email) into v_valid from pg_temp.customer_import where problem is null;
  with upserted as (
    insert into public.customers as c (email, name, company, country, is_active)
    select distinct on (i.email)
           i.email, nullif(btrim(i.name), ''), nullif(btrim(i.company), ''),
           nullif(btrim(i.country), ''),
           case when p_set_is_active then public.parse_boolean(i.is_active) else true end
      from pg_temp.customer_import i
     where i.problem is null
     order by i.email, i.line
    on conflict (email) do update
       set name = excluded.name, company = excluded.company, country = excluded.country,
           is_active = case when p_set_is_active then excluded.is_active else c.is_active end
     where (c.name, c.company, c.country) is distinct from (excluded.name, excluded.company, excluded.country)
        or (p_set_is_active and c.is_active is distinct from excluded.is_active)
    returning (xmax = 0) as is_new
  )
  select count(*) filter (where is_new), count(*) filter (where not is_new)
    into inserted, updated from upserted;
  unchanged := v_valid - inserted - updated;
end;
$$;
comment on function public.apply_customer_import(boolean) is
  'Upserts the valid, first-occurrence rows of the staged import by email in one statement; '
  'returns how many customers were inserted, updated, or already identical.';

--------------------------------------------------------------------------------------------------
-- Templates

create function public.add_template(
  p_provider text, p_name text, p_week integer, p_version integer, p_subject text, p_html text,
  p_text text, p_active boolean
) returns public.templates
  language plpgsql volatile as $$
declare
  v_template public.templates;
begin
  if p_provider = 'internal' and (p_subject is null or (p_html is null and p_text is null)) then
    raise exception 'add_template: an internal template needs a subject and an HTML or text body'
      using errcode = 'invalid_parameter_value';
  end if;
  -- Two operators adding the next version of one week at once: the second waits, then takes the
  -- version after the first's.
  perform pg_advisory_xact_lock(hashtext('public.templates'), p_week);
  insert into public.templates (provider, provider_template_name, week_of_month, version, is_active)
  values (p_provider, p_name, p_week,
          coalesce(p_version, (select coalesce(max(version), 0) + 1 from public.templates
                                where week_of_month = p_week)),
          coalesce(p_active, true))
  returning * into v_template;
  if p_provider = 'internal' then
    insert into public.template_contents (template_id, subject, html_body, text_body)
    values (v_template.template_id, p_subject, p_html, p_text);
  end if;
  perform public.record_operator_action('add_template', null, null, null, null,
    jsonb_build_object('template_id', v_template.template_id, 'week_of_month', p_week,
                       'version', v_template.version, 'provider', p_provider, 'name', p_name));
  return v_template;
end;
$$;
comment on function public.add_template(text, text, integer, integer, text, text, text, boolean) is
  'Adds a template version for a week (version null: the next one), with its content for provider '
  'internal. Active by default: the highest active version of a week is the one new campaigns use.';

create function public.activate_template(p_template_id uuid) returns integer
  language plpgsql volatile as $$
declare
  v_week integer;
  v_deactivated integer;
begin
  select week_of_month into v_week from public.templates where template_id = p_template_id for update;
  if not found then
    raise exception 'activate_template: no template %', p_template_id using errcode = 'no_data_found';
  end if;
  update public.templates set is_active = (template_id = p_template_id)
   where week_of_month = v_week and is_active is distinct from (template_id = p_template_id);
  select count(*) into v_deactivated from public.templates
   where week_of_month = v_week and template_id <> p_template_id and not is_active;
  perform public.record_operator_action('activate_template', null, null, null, null,
    jsonb_build_object('template_id', p_template_id, 'week_of_month', v_week));
  return v_deactivated;
end;
$$;
comment on function public.activate_template(uuid) is
  'Makes this version the one its week uses: it becomes active and every other version of the week '
  'inactive (a rollback is activating an older version). Campaigns already generated keep theirs.';

create function public.deactivate_template(p_template_id uuid) returns boolean
  language plpgsql volatile as $$
begin
  update public.templates set is_active = false where template_id = p_template_id;
  if not found then
    raise exception 'deactivate_template: no template %', p_template_id using errcode = 'no_data_found';
  end if;
  perform public.record_operator_action('deactivate_template', null, null, null, null,
    jsonb_build_object('template_id', p_template_id));
  return true;
end;
$$;
comment on function public.deactivate_template(uuid) is
  'Takes a template version out of use for new campaigns.';

--------------------------------------------------------------------------------------------------
-- Campaign control. Status changes go through the campaigns triggers (transition check, and
-- entering queued enqueues the sends in the same transaction), so these functions only decide
-- which changes an operator may ask for and record that they did.

-- Not SECURITY DEFINER itself: it runs with the rights of the wrapper that calls it.
create function public.set_campaign_status(
  p_campaign_id uuid, p_action text, p_from text[], p_to text
) returns text
  language plpgsql volatile as $$
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
  update public.campaigns set status = p_to where campaign_id = p_campaign_id;
  perform public.record_operator_action(p_action, null, p_campaign_id, null, null,
    jsonb_build_object('from', v_status, 'to', p_to));
  -- Entering queued with nothing to send ends the campaign at once (the enqueue trigger).
  select status into v_status from public.campaigns where campaign_id = p_campaign_id;
  return v_status;
end;
$$;
comment on function public.set_campaign_status(uuid, text, text[], text) is
  'Shared body of queue/pause/resume_campaign: moves a campaign from one of p_from to p_to and records it.';

create function public.queue_campaign(p_campaign_id uuid) returns text
  language sql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
  select public.set_campaign_status(p_campaign_id, 'queue_campaign', array['draft'], 'queued');
$$;
comment on function public.queue_campaign(uuid) is
  'Starts sending a draft campaign: queued, one send_recipient job per pending recipient in the same '
  'transaction. Returns the new status (done when nothing is left to send). No-op when already queued or sending.';

create function public.pause_campaign(p_campaign_id uuid) returns text
  language sql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
  select public.set_campaign_status(p_campaign_id, 'pause_campaign', array['queued', 'sending'], 'paused');
$$;
comment on function public.pause_campaign(uuid) is
  'Stops new sends of a queued or sending campaign (queued jobs find it paused and do nothing; '
  'sends already claimed finish). Returns paused. No-op when already paused.';

create function public.resume_campaign(p_campaign_id uuid) returns text
  language sql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
  select public.set_campaign_status(p_campaign_id, 'resume_campaign', array['paused'], 'queued');
$$;
comment on function public.resume_campaign(uuid) is
  'Resumes a paused campaign: queued again, its pending recipients re-enqueued (job keys keep one job '
  'per recipient). Returns the new status.';

create function public.enqueue_generate_campaign(
  p_week integer, p_date date default null, p_send boolean default true
) returns bigint
  language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
declare
  v_date date := coalesce(p_date, (now() at time zone 'utc')::date);
  v_job_id bigint;
begin
  if p_week is null or p_week not between 1 and 4 then
    raise exception 'enqueue_generate_campaign: week must be 1-4, got %', p_week
      using errcode = 'invalid_parameter_value';
  end if;
  select id into v_job_id from graphile_worker.add_job('generate_campaign',
    json_build_object('week_of_month', p_week, 'generated_date', v_date, 'send', coalesce(p_send, true)),
    job_key => format('generate_campaign:%s:%s', p_week, v_date));
  perform public.record_operator_action('enqueue_generate_campaign', null, null, null, null,
    jsonb_build_object('week_of_month', p_week, 'generated_date', v_date, 'send', coalesce(p_send, true),
                       'job_id', v_job_id));
  return v_job_id;
end;
$$;
comment on function public.enqueue_generate_campaign(integer, date, boolean) is
  'Adds a generate_campaign job (week 1-4, date default today UTC, send default true); returns its job id. '
  'Generation is idempotent per week and date.';

create function public.campaign_progress(p_campaign_id uuid)
  returns table (
    status text, recipients bigint, pending bigint, sending bigint, sent bigint, in_doubt bigint,
    failed bigint, suppressed bigint, bounced bigint, complained bigint, unsubscribed bigint,
    accepted bigint, bounce_rate numeric, complaint_rate numeric, first_attempt_at timestamptz,
    last_attempt_at timestamptz, attempts_last_minute bigint
  )
  language sql stable as $$
  select c.status, count(r.customer_id),
         count(*) filter (where r.recipient_status = 'pending'),
         count(*) filter (where r.recipient_status = 'sending'),
         count(*) filter (where r.recipient_status = 'sent'),
         count(*) filter (where r.recipient_status = 'in_doubt'),
         count(*) filter (where r.recipient_status = 'failed'),
         count(*) filter (where r.recipient_status = 'suppressed'),
         count(*) filter (where r.recipient_status = 'bounced'),
         count(*) filter (where r.recipient_status = 'complained'),
         count(*) filter (where r.recipient_status = 'unsubscribed'),
         count(*) filter (where r.ses_message_id is not null),
         round(count(*) filter (where r.recipient_status = 'bounced')::numeric
               / nullif(count(*) filter (where r.ses_message_id is not null), 0), 6),
         round(count(*) filter (where r.recipient_status = 'complained')::numeric
               / nullif(count(*) filter (where r.ses_message_id is not null), 0), 6),
         min(r.last_attempt_at), max(r.last_attempt_at),
         count(*) filter (where r.last_attempt_at > now() - interval '1 minute')
    from public.campaigns c
    left join public.campaign_recipients r on r.campaign_id = c.campaign_id
   where c.campaign_id = p_campaign_id
   group by c.status;
$$;
comment on function public.campaign_progress(uuid) is
  'Recipient counts per status, accepted (SES returned a message id), bounce and complaint rates '
  '(bounced or complained over accepted) and attempt times, for mailer campaign status. No row: no such campaign.';

--------------------------------------------------------------------------------------------------
-- Suppression by operators. The list stays authoritative: a suppression stops pending recipients
-- everywhere (trigger); removing one is an explicit act with a note, recorded with what was removed.

create function public.suppress_email(
  p_email text, p_reason text default 'manual', p_note text default null
) returns boolean
  language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
declare
  v_email text := public.normalize_email(p_email);
  v_problem text := public.email_problem(p_email);
begin
  if v_problem is not null then
    raise exception 'suppress_email: % is not an address (%)', coalesce(p_email, 'null'), v_problem
      using errcode = 'invalid_parameter_value';
  end if;
  insert into public.suppression_list (email, reason, source)
  values (v_email, coalesce(p_reason, 'manual'), 'ops')
  on conflict (email) do nothing;
  if not found then
    return false; -- already suppressed; the first reason and source stay
  end if;
  perform public.record_operator_action('suppress', v_email, null, null, p_note,
    jsonb_build_object('reason', coalesce(p_reason, 'manual')));
  return true;
end;
$$;
comment on function public.suppress_email(text, text, text) is
  'Suppresses an address (source ops, reason manual unless given); its pending recipients in every '
  'campaign become suppressed. Returns false when it was already suppressed (the entry is kept as it was).';
revoke all on function public.suppress_email(text, text, text) from public;

create function public.unsuppress_email(p_email text, p_note text, p_force boolean default false)
  returns boolean
  language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
declare
  v_entry public.suppression_list;
begin
  if p_note is null or btrim(p_note) = '' then
    raise exception 'unsuppress_email: say why in p_note; removing a suppression is recorded'
      using errcode = 'invalid_parameter_value';
  end if;
  select * into v_entry from public.suppression_list
   where email = public.normalize_email(p_email) for update;
  if not found then
    return false;
  end if;
  -- The person asked not to be mailed, or reported us as spam: only their own new consent undoes
  -- that, and the operator has to say so.
  if v_entry.reason in ('unsubscribe', 'complaint') and not coalesce(p_force, false) then
    raise exception 'unsuppress_email: % is suppressed for %: removing that needs p_force => true '
      '(only with the person''s renewed consent)', v_entry.email, v_entry.reason
      using errcode = 'check_violation';
  end if;
  delete from public.suppression_list where email = v_entry.email;
  perform public.record_operator_action('unsuppress', v_entry.email, null, null, p_note,
    jsonb_build_object('reason', v_entry.reason, 'source', v_entry.source,
                       'suppressed_since', v_entry.created_at, 'forced', coalesce(p_force, false)));
  return true;
end;
$$;
comment on function public.unsuppress_email(text, text, boolean) is
  'Removes an address from the suppression list, recording the removed entry and p_note in '
  'operator_actions. Unsubscribe and complaint entries need p_force. Returns false when it was not '
  'suppressed. Recipients already suppressed stay so; future campaigns include the address again.';
revoke all on function public.unsuppress_email(text, text, boolean) from public;

--------------------------------------------------------------------------------------------------
-- Jobs (graphile-worker): read through its jobs view, changed through its public functions only.

create function public.job_queue_summary()
  returns table (
    task_identifier text, ready bigint, scheduled bigint, running bigint, retrying bigint,
    failed bigint, oldest_ready_at timestamptz
  )
  language sql stable security definer
  set search_path = pg_catalog, public, pg_temp as $$
  select j.task_identifier,
         count(*) filter (where j.locked_at is null and j.attempts < j.max_attempts and j.run_at <= now()),
         count(*) filter (where j.locked_at is null and j.attempts < j.max_attempts and j.run_at > now()),
         count(*) filter (where j.locked_at is not null),
         count(*) filter (where j.locked_at is null and j.attempts > 0 and j.attempts < j.max_attempts),
         count(*) filter (where j.locked_at is null and j.attempts >= j.max_attempts),
         min(j.run_at) filter (where j.locked_at is null and j.attempts < j.max_attempts and j.run_at <= now())
    from graphile_worker.jobs j
   group by j.task_identifier
   order by j.task_identifier;
$$;
comment on function public.job_queue_summary() is
  'Jobs per task: ready to run, scheduled later, running, retrying (failed before, will run again), '
  'failed for good (attempts >= max_attempts), and when the oldest ready job became due.';

create function public.failed_jobs(p_task text default null, p_limit integer default 50)
  returns table (
    id bigint, task_identifier text, attempts smallint, max_attempts smallint, last_error text,
    run_at timestamptz, created_at timestamptz, updated_at timestamptz
  )
  language sql stable security definer
  set search_path = pg_catalog, public, pg_temp as $$
  select j.id, j.task_identifier, j.attempts, j.max_attempts, j.last_error, j.run_at, j.created_at,
         j.updated_at
    from graphile_worker.jobs j
   where j.attempts >= j.max_attempts and j.locked_at is null
     and (p_task is null or j.task_identifier = p_task)
   order by j.updated_at desc, j.id desc
   limit p_limit;
$$;
comment on function public.failed_jobs(text, integer) is
  'Jobs that will not run again (attempts >= max_attempts), newest first, with their last error.';

create function public.retry_job(p_job_id bigint) returns boolean
  language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
declare
  v_job record;
begin
  select j.id, j.task_identifier, j.attempts, j.max_attempts, j.locked_at, j.last_error into v_job
    from graphile_worker.jobs j where j.id = p_job_id;
  if not found then
    raise exception 'retry_job: no job %', p_job_id using errcode = 'no_data_found';
  end if;
  if v_job.locked_at is not null then
    raise exception 'retry_job: job % is running right now', p_job_id using errcode = 'lock_not_available';
  end if;
  perform 1 from graphile_worker.reschedule_jobs(array[p_job_id], run_at => now(), attempts => 0);
  perform public.record_operator_action('retry_jobs', null, null, null, null,
    jsonb_build_object('job_ids', jsonb_build_array(p_job_id), 'task', v_job.task_identifier,
                       'attempts_before', v_job.attempts, 'last_error', left(v_job.last_error, 500)));
  return true;
end;
$$;
comment on function public.retry_job(bigint) is
  'Runs a job again now with its attempts reset to 0 (a failed one, or one waiting out a retry backoff).';
revoke all on function public.retry_job(bigint) from public;

create function public.retry_failed_jobs(p_task text default null) returns integer
  language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
declare
  v_ids bigint[];
begin
  select coalesce(array_agg(j.id order by j.id), '{}') into v_ids
    from graphile_worker.jobs j
   where j.attempts >= j.max_attempts and j.locked_at is null
     and (p_task is null or j.task_identifier = p_task);
  if cardinality(v_ids) = 0 then
    return 0;
  end if;
  perform 1 from graphile_worker.reschedule_jobs(v_ids, run_at => now(), attempts => 0);
  perform public.record_operator_action('retry_jobs', null, null, null, null,
    jsonb_build_object('job_ids', to_jsonb(v_ids), 'task', p_task));
  return cardinality(v_ids);
end;
$$;
comment on function public.retry_failed_jobs(text) is
  'Runs every failed job (attempts >= max_attempts) again now with attempts reset, of one task or '
  '(null) all tasks; returns how many.';
revoke all on function public.retry_failed_jobs(text) from public;

--------------------------------------------------------------------------------------------------
-- In-doubt recipients: SendEmail was called but its outcome never recorded. Never resent
-- automatically (at most once); resolved by SES evidence (reconcile_in_doubt, and apply_ses_event
-- as events arrive) or by an explicit operator decision (resolve_in_doubt).

create function public.in_doubt_recipients(p_older_than interval default '0 seconds')
  returns table (
    campaign_id uuid, campaign_name text, customer_id uuid, email text, attempt_count integer,
    last_attempt_at timestamptz, last_error text, events bigint
  )
  language sql stable as $$
  select r.campaign_id, c.campaign_name, r.customer_id, r.email, r.attempt_count, r.last_attempt_at,
         r.last_error,
         (select count(*) from public.email_events_op e
           where e.campaign_id = r.campaign_id and e.customer_id = r.customer_id)
    from public.campaign_recipients r
    join public.campaigns c on c.campaign_id = r.campaign_id
   where r.recipient_status = 'in_doubt' and r.last_attempt_at <= now() - p_older_than
   order by r.last_attempt_at, r.campaign_id, r.customer_id;
$$;
comment on function public.in_doubt_recipients(interval) is
  'Recipients in_doubt whose last attempt is older than p_older_than, oldest first, with how many '
  'SES events name them.';

create function public.resolve_in_doubt(
  p_campaign_id uuid, p_customer_id uuid, p_decision text, p_note text default null
) returns text
  language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
declare
  v_recipient public.campaign_recipients;
  v_campaign_status text;
  v_result text;
begin
  if p_decision is null or p_decision not in ('sent', 'resend') then
    raise exception 'resolve_in_doubt: decision must be sent or resend, got %', coalesce(p_decision, 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  select status into v_campaign_status from public.campaigns where campaign_id = p_campaign_id for update;
  select * into v_recipient from public.campaign_recipients
   where campaign_id = p_campaign_id and customer_id = p_customer_id for update;
  if v_recipient.campaign_id is null then
    raise exception 'resolve_in_doubt: no recipient (campaign %, customer %)', p_campaign_id, p_customer_id
      using errcode = 'no_data_found';
  end if;
  if v_recipient.recipient_status <> 'in_doubt' then
    raise exception 'resolve_in_doubt: recipient (campaign %, customer %) is %, not in_doubt; nothing changed',
      p_campaign_id, p_customer_id, v_recipient.recipient_status using errcode = 'check_violation';
  end if;

  if p_decision = 'sent' then
    update public.campaign_recipients
       set recipient_status = 'sent', last_error = 'in doubt; marked sent by an operator'
     where campaign_id = p_campaign_id and customer_id = p_customer_id;
    v_result := 'sent';
  else
    update public.campaign_recipients
       set recipient_status = 'pending', last_error = 'in doubt; resend ordered by an operator'
     where campaign_id = p_campaign_id and customer_id = p_customer_id;
    if v_campaign_status = 'done' then
      -- A finished campaign sends again through the usual door: queued enqueues its pending
      -- recipient(s), and finishes once more when they are sent.
      update public.campaigns set status = 'queued' where campaign_id = p_campaign_id;
      v_result := 'pending; campaign queued again to send it';
    elsif v_campaign_status in ('queued', 'sending') then
      perform graphile_worker.add_job('send_recipient',
        json_build_object('campaign_id', p_campaign_id, 'customer_id', p_customer_id),
        job_key => format('send_recipient:%s:%s', p_campaign_id, p_customer_id));
      v_result := 'pending; send_recipient job added';
    else
      v_result := format('pending; campaign is %s: it is sent when the campaign is resumed', v_campaign_status);
    end if;
  end if;
  perform public.record_operator_action('resolve_in_doubt', v_recipient.email, p_campaign_id,
    p_customer_id, p_note,
    jsonb_build_object('decision', p_decision, 'attempt_count', v_recipient.attempt_count,
                       'last_attempt_at', v_recipient.last_attempt_at, 'last_error', v_recipient.last_error));
  return v_result;
end;
$$;
comment on function public.resolve_in_doubt(uuid, uuid, text, text) is
  'The operator''s decision on an in_doubt recipient: ''sent'' (SES did take it) marks it sent; '
  '''resend'' sets it pending and enqueues one send_recipient job (the recipient may get it twice). '
  'Recorded in operator_actions. Refuses a recipient that is not in_doubt.';
revoke all on function public.resolve_in_doubt(uuid, uuid, text, text) from public;

-- Evidence: an event that names the recipient (apply_ses_event matched it by message id or tags),
-- or an unmatched event for the same address from the attempt on (identity notifications carry no
-- tags, and an in-doubt recipient has no message id to match by). Unmatched events can only come
-- from messages whose outcome we never recorded, so the address and time are enough.
create function public.reconcile_in_doubt()
  returns table (campaign_id uuid, customer_id uuid, recipient_status text, event_id uuid, event_type text)
  language plpgsql volatile as $$
#variable_conflict use_column
begin
  return query
  with evidence as (
    select r.campaign_id, r.customer_id, ev.event_id, ev.event_type, ev.ses_message_id,
           case when ev.event_type = 'complaint' then 'complained'
                when ev.event_type = 'bounce' and ev.payload #>> '{bounce,bounceType}' = 'Permanent' then 'bounced'
                when ev.event_type in ('reject', 'rendering_failure') then 'failed'
                else 'sent' end as new_status
      from public.campaign_recipients r
      cross join lateral (
        select e.event_id, e.event_type, e.ses_message_id, e.payload
          from public.email_events_op e
         where e.event_type in ('send', 'delivery', 'delivery_delay', 'open', 'click', 'bounce',
                                'complaint', 'reject', 'rendering_failure')
           and ((e.campaign_id = r.campaign_id and e.customer_id = r.customer_id)
                or (e.campaign_id is null and e.email = r.email
                    and e.event_time >= r.last_attempt_at - interval '5 minutes'))
         order by case e.event_type when 'complaint' then 0 when 'bounce' then 1 when 'reject' then 2
                                    when 'rendering_failure' then 2 else 3 end,
                  e.event_time
         limit 1) ev
     where r.recipient_status = 'in_doubt'
     for update of r skip locked
  ), resolved as (
    update public.campaign_recipients r
       set recipient_status = ev.new_status,
           ses_message_id = coalesce(r.ses_message_id,
             case when not exists (select 1 from public.campaign_recipients o
                                    where o.ses_message_id = ev.ses_message_id)
                  then ev.ses_message_id end),
           last_error = format('in doubt; reconciled from SES %s event %s', ev.event_type, ev.event_id)
      from evidence ev
     where r.campaign_id = ev.campaign_id and r.customer_id = ev.customer_id
       and r.recipient_status = 'in_doubt'
    returning r.campaign_id, r.customer_id, r.recipient_status, ev.event_id, ev.event_type
  )
  select * from resolved;
end;
$$;
comment on function public.reconcile_in_doubt() is
  'Resolves in_doubt recipients that SES events account for: complaint -> complained, permanent '
  'bounce -> bounced, reject/rendering failure -> failed, any other delivery event -> sent. '
  'Returns what it changed; recipients without evidence stay in_doubt for an operator.';

--------------------------------------------------------------------------------------------------
-- Housekeeping

create function public.expire_unsubscribe_tokens(p_grace interval, p_limit integer) returns integer
  language sql volatile as $$
  with doomed as (
    select token_id from public.unsubscribe_tokens
     where expires_at < now() - p_grace
     order by expires_at
     limit p_limit
       for update skip locked
  ), deleted as (
    delete from public.unsubscribe_tokens t using doomed d where t.token_id = d.token_id
    returning 1
  )
  select count(*)::integer from deleted;
$$;
comment on function public.expire_unsubscribe_tokens(interval, integer) is
  'Deletes up to p_limit unsubscribe tokens that expired more than p_grace ago (their links then '
  'answer "unknown" instead of "expired"); returns how many. Call until it returns less than p_limit.';

create table public.email_event_exports (
  export_id uuid primary key default gen_random_uuid(),
  location text not null,
  row_count integer not null,
  bytes bigint not null,
  sha256 text not null,
  first_created_at timestamptz,
  last_created_at timestamptz,
  created_at timestamptz not null default now(),
  constraint email_event_exports_row_count_check check (row_count >= 0),
  constraint email_event_exports_sha256_check check (sha256 ~ '^[0-9a-f]{64}$')
);
comment on table public.email_event_exports is 'One row per retention export file: where the deleted email_events_op rows went (Redshift loads them from there).';
comment on column public.email_event_exports.export_id is 'Primary key.';
comment on column public.email_event_exports.location is 'The file: an absolute local path, or s3://bucket/key.';
comment on column public.email_event_exports.row_count is 'Events deleted after the file was verified (all of them are in the file).';
comment on column public.email_event_exports.bytes is 'Size of the gzip file.';
comment on column public.email_event_exports.sha256 is 'SHA-256 of the gzip file, hex.';
comment on column public.email_event_exports.first_created_at is 'Oldest created_at among the deleted events.';
comment on column public.email_event_exports.last_created_at is 'Newest created_at among the deleted events.';
comment on column public.email_event_exports.created_at is 'When the events were deleted.';
create index email_event_exports_created_at_idx on public.email_event_exports (created_at);

create function public.delete_exported_events(
  p_event_ids uuid[], p_location text, p_sha256 text, p_bytes bigint
) returns integer
  language plpgsql volatile as $$
declare
  v_count integer;
  v_first timestamptz;
  v_last timestamptz;
begin
  with gone as (
    delete from public.email_events_op where event_id = any(p_event_ids) returning created_at
  )
  select count(*), min(created_at), max(created_at) into v_count, v_first, v_last from gone;
  insert into public.email_event_exports (location, row_count, bytes, sha256, first_created_at, last_created_at)
  values (p_location, v_count, p_bytes, p_sha256, v_first, v_last);
  return v_count;
end;
$$;
comment on function public.delete_exported_events(uuid[], text, text, bigint) is
  'Deletes exactly the given (already exported and verified) events and records the export file, '
  'in one transaction; returns how many were deleted.';

--! split: 4-performance.sql
-- Sending performance (rerun-safe: drop ... if exists, create ... if not exists, create or replace).
-- Measured with bench/ (BENCHMARKS.md); each change says what it fixed and by how much.

--------------------------------------------------------------------------------------------------
-- "Is any recipient still pending?" in O(1).
-- The check after every send used to be `exists (... recipient_status in ('pending', 'sending'))`
-- over a partial index on campaign_id alone. It walked past every recipient already sent: the
-- planner picked a sequential scan (statistics say every row is pending), and equal index keys are
-- kept in heap order, which is the order the sends happen in. Its cost grew with the campaign
-- (0.5 ms per send at 3,000 of 20,000 sent, 1.5 ms at 12,000: quadratic overall).
-- Now pending recipients are indexed by (campaign_id, customer_id), the jobs are enqueued in
-- customer_id order, and the probe reads the index from the end, where the recipients sent last
-- are: it lands on a pending one at once until the last sends of the campaign. The predicate is
-- exactly `pending`, so the probe needs no filter: with the old pending-or-sending predicate, or an
-- ORDER BY on customer_id alone, the planner preferred walking the primary key or
-- campaign_recipients_customer_id_idx backwards through every sent row (seen in bench/scaling.ts:
-- 10,000 and 30,000 rows read by one probe). Claims no longer add an entry to this index either
-- (a `sending` row is not in it), one index insert fewer per send.
-- The probe is written inline (a non-inlined SQL function is planned on every call by PostgreSQL
-- 15, ~90 us here) as a scalar subquery (EXISTS would drop its ORDER BY and LIMIT).
drop index if exists public.campaign_recipients_unsent_idx;
create index if not exists campaign_recipients_pending_idx
  on public.campaign_recipients (campaign_id, customer_id)
  where recipient_status = 'pending';
comment on index public.campaign_recipients_pending_idx is
  'Pending recipients per campaign in customer_id order: jobs are enqueued forwards, the "anything '
  'pending?" probe reads it backwards.';

-- Jobs run in job id order, so enqueueing in customer_id order makes the last customer_id the last
-- to be sent (see campaign_recipients_pending_idx).
create or replace function public.enqueue_campaign_sends(p_campaign_id uuid) returns integer
  language sql volatile as $$
  select count(*)::integer from graphile_worker.add_jobs(
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
$$;
comment on function public.enqueue_campaign_sends(uuid) is
  'Adds one send_recipient job per pending recipient of the campaign, in customer_id order; '
  'returns how many.';

--------------------------------------------------------------------------------------------------
-- One round trip fewer per send: the outcome is recorded and "was that the last one?" asked in the
-- same statement; finish_campaign_if_complete runs (after the commit) only when no recipient of the
-- campaign is pending any more, i.e. for the last sends of a campaign.
--
-- Why that never leaves a finished campaign in `sending`: two last sends that record at the same
-- moment each see the other still `sending` (neither has committed). So recording holds a shared
-- advisory lock on the campaign from just after its row update until its commit, and
-- finish_campaign_if_complete takes the same lock exclusively before it looks: it waits for every
-- outcome being recorded to commit, then sees them all. A recorder that still saw a pending
-- recipient R leaves the check to whoever finishes R, whose check starts later and waits for that
-- recorder's commit. The shared lock is taken after the row update so that a transaction holding a
-- recipient's row lock while it waits for the exclusive lock (the sweep) cannot deadlock with it.
-- Lock key: (7301, hashtext(campaign_id)); a hash collision between campaigns only adds a wait.

create or replace function public.record_send_outcome(
  p_campaign_id uuid, p_customer_id uuid, p_outcome text, p_message_id text, p_error text,
  p_retry_at timestamptz
) returns text
  language plpgsql volatile as $$
begin
  if p_outcome is null or p_outcome not in ('sent', 'failed', 'in_doubt', 'released') then
    raise exception 'record_send_outcome: unknown outcome %', p_outcome
      using errcode = 'invalid_parameter_value';
  end if;
  update public.campaign_recipients
     set recipient_status = case p_outcome when 'released' then 'pending' else p_outcome end,
         ses_message_id = coalesce(p_message_id, ses_message_id),
         last_error = p_error
   where campaign_id = p_campaign_id and customer_id = p_customer_id
     and recipient_status in ('sending', 'in_doubt');
  if not found then
    return 'unchanged';
  end if;
  if p_outcome = 'released' then
    perform graphile_worker.add_job('send_recipient',
      json_build_object('campaign_id', p_campaign_id, 'customer_id', p_customer_id),
      run_at => coalesce(p_retry_at, now()));
    return 'recorded';
  end if;
  perform pg_advisory_xact_lock_shared(7301, hashtext(p_campaign_id::text));
  if (select r.customer_id from public.campaign_recipients r
       where r.campaign_id = p_campaign_id and r.recipient_status = 'pending'
       order by r.campaign_id desc, r.customer_id desc limit 1) is not null then
    return 'recorded';
  end if;
  return 'recorded_check';
end;
$$;
comment on function public.record_send_outcome(uuid, uuid, text, text, text, timestamptz) is
  'Records what happened to a claimed recipient (sent | failed | in_doubt | released: back to '
  'pending with a new job at p_retry_at). Returns unchanged (nothing was claimed), recorded, or '
  'recorded_check: no recipient is pending any more, call finish_campaign_if_complete after commit.';

-- Kept for callers outside the send path; same effect, boolean answer.
create or replace function public.record_send_result(
  p_campaign_id uuid, p_customer_id uuid, p_outcome text, p_message_id text, p_error text,
  p_retry_at timestamptz
) returns boolean
  language sql volatile as $$
  select public.record_send_outcome(p_campaign_id, p_customer_id, p_outcome, p_message_id,
                                    p_error, p_retry_at) <> 'unchanged';
$$;
comment on function public.record_send_result(uuid, uuid, text, text, text, timestamptz) is
  'Records what happened to a claimed recipient; released recipients get a new job at p_retry_at. '
  'See record_send_outcome.';

-- While anything is pending the answer is "not yet", without a lock: whoever finishes the pending
-- recipient checks again later. `sending` rows are few (the sends in flight), found through
-- campaign_recipients_sending_idx. plpgsql rather than sql, so its plans are kept per session.
create or replace function public.finish_campaign_if_complete(p_campaign_id uuid) returns boolean
  language plpgsql volatile as $$
begin
  if (select r.customer_id from public.campaign_recipients r
       where r.campaign_id = p_campaign_id and r.recipient_status = 'pending'
       order by r.campaign_id desc, r.customer_id desc limit 1) is not null then
    return null;
  end if;
  -- Waits for every outcome still being recorded (see record_send_outcome).
  perform pg_advisory_xact_lock(7301, hashtext(p_campaign_id::text));
  update public.campaigns set status = 'done'
   where campaign_id = p_campaign_id and status in ('queued', 'sending')
     and (select r.customer_id from public.campaign_recipients r
           where r.campaign_id = p_campaign_id and r.recipient_status = 'pending'
           order by r.campaign_id desc, r.customer_id desc limit 1) is null
     and not exists (select 1 from public.campaign_recipients r
                      where r.campaign_id = p_campaign_id and r.recipient_status = 'sending');
  return found or null;
end;
$$;
comment on function public.finish_campaign_if_complete(uuid) is
  'Marks a queued/sending campaign done when no recipient is pending or sending; waits for '
  'outcomes being recorded (record_send_outcome) so that the last of them is never missed.';

--------------------------------------------------------------------------------------------------
-- claim_recipient: same decisions as in 1-pipeline.sql, one statement fewer (the campaign's status
-- and its template in one query).
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
comment on function public.claim_recipient(uuid, uuid, interval, double precision) is
  'Claims a pending recipient for sending under its row lock (commit before calling SES). '
  'A claim older than p_lease with no outcome becomes in_doubt, never a second send.';

--------------------------------------------------------------------------------------------------
-- Claims and outcomes in batches: a worker process gathers the claims (and, separately, the
-- outcomes) of the sends it is running at the same moment and writes them in one statement and
-- one commit, instead of a round trip and a commit per send. Nothing about a single recipient
-- changes: each claim is committed before its SendEmail (the batch commits, then the answers go
-- back to the jobs), each outcome is recorded as record_send_outcome would.

-- Lock order: the campaign rows first (the queued -> sending move), then the recipients in the
-- order given (the caller sorts them), so two batches never wait for each other in a cycle.
-- Recipients that can simply be claimed (pending, campaign queued/sending, not suppressed) are
-- claimed by one UPDATE; every other one goes through claim_recipient, which decides what it is
-- (the same recipient twice in one batch: the second finds it sending, in_flight).
-- One row per position of the arrays (ord, 1-based), claimed ones first.
create or replace function public.claim_recipients(
  p_campaign_ids uuid[], p_customer_ids uuid[], p_lease interval, p_rate double precision
) returns table (
  ord integer, outcome text, email text, template_data jsonb, provider text,
  provider_template_name text, template_id uuid, send_at timestamptz, attempt_count integer
)
  language plpgsql volatile as $$
#variable_conflict use_column
declare
  v_row record;
  v_claim public.send_claim;
  v_claimed integer[] := '{}';
begin
  update public.campaigns c set status = 'sending'
   where c.campaign_id = any(p_campaign_ids) and c.status = 'queued';

  for v_row in
    with keys as (
      select k.campaign_id, k.customer_id, k.ord::integer as ord
        from unnest(p_campaign_ids, p_customer_ids) with ordinality as k(campaign_id, customer_id, ord)
    ), claimed as (
      update public.campaign_recipients r
         set recipient_status = 'sending', attempt_count = r.attempt_count + 1,
             last_attempt_at = now(), last_error = null
        from keys k
       where r.campaign_id = k.campaign_id and r.customer_id = k.customer_id
         and r.recipient_status = 'pending'
         and exists (select 1 from public.campaigns c
                      where c.campaign_id = r.campaign_id and c.status in ('queued', 'sending'))
         -- Suppression checked again at send time (a suppression arriving meanwhile moves the
         -- pending row to suppressed, so this UPDATE then finds it no longer pending).
         and not exists (select 1 from public.suppression_list s where s.email = r.email)
      returning k.ord, r.campaign_id, r.email, r.template_data, r.attempt_count
    )
    select cl.ord, cl.email, cl.template_data, cl.attempt_count,
           t.provider, t.provider_template_name, t.template_id
      from claimed cl
      join public.campaigns c on c.campaign_id = cl.campaign_id
      join public.templates t on t.template_id = c.template_id
     order by cl.ord
  loop
    v_claimed := v_claimed || v_row.ord;
    ord := v_row.ord;
    outcome := 'claimed';
    email := v_row.email;
    template_data := v_row.template_data;
    provider := v_row.provider;
    provider_template_name := v_row.provider_template_name;
    template_id := v_row.template_id;
    attempt_count := v_row.attempt_count;
    send_at := case when coalesce(p_rate, 0) > 0 then public.reserve_send_slot(p_rate) end;
    return next;
  end loop;

  for v_row in
    select k.campaign_id, k.customer_id, k.ord::integer as ord
      from unnest(p_campaign_ids, p_customer_ids) with ordinality as k(campaign_id, customer_id, ord)
     where not (k.ord::integer = any(v_claimed))
     order by k.ord
  loop
    v_claim := public.claim_recipient(v_row.campaign_id, v_row.customer_id, p_lease, p_rate);
    ord := v_row.ord;
    outcome := v_claim.outcome;
    email := v_claim.email;
    template_data := v_claim.template_data;
    provider := v_claim.provider;
    provider_template_name := v_claim.provider_template_name;
    template_id := v_claim.template_id;
    send_at := v_claim.send_at;
    attempt_count := v_claim.attempt_count;
    return next;
  end loop;
end;
$$;
comment on function public.claim_recipients(uuid[], uuid[], interval, double precision) is
  'claim_recipient for many recipients in one transaction (committed before any of them is sent): '
  'one row per array position (ord, 1-based). Callers pass them sorted by (campaign_id, customer_id).';

-- One UPDATE for every outcome; released recipients get their new jobs in one add_jobs call; then,
-- per campaign, the shared completion lock and the "anything pending?" probe of
-- record_send_outcome. One row per array position (ord, 1-based).
create or replace function public.record_send_outcomes(
  p_campaign_ids uuid[], p_customer_ids uuid[], p_outcomes text[], p_message_ids text[],
  p_errors text[], p_retry_at timestamptz[]
) returns table (ord integer, recorded text)
  language plpgsql volatile as $$
#variable_conflict use_column
declare
  v_ords integer[];
  v_outcomes text[];
  v_campaign uuid;
  v_check uuid[] := '{}';
begin
  if exists (select 1 from unnest(p_outcomes) o
              where o is null or o not in ('sent', 'failed', 'in_doubt', 'released')) then
    raise exception 'record_send_outcomes: unknown outcome in %', p_outcomes
      using errcode = 'invalid_parameter_value';
  end if;

  with o as (
    select o.*, o.ord::integer as position
      from unnest(p_campaign_ids, p_customer_ids, p_outcomes, p_message_ids, p_errors, p_retry_at)
           with ordinality as o(campaign_id, customer_id, outcome, message_id, error, retry_at, ord)
  ), updated as (
    update public.campaign_recipients r
       set recipient_status = case o.outcome when 'released' then 'pending' else o.outcome end,
           ses_message_id = coalesce(o.message_id, r.ses_message_id),
           last_error = o.error
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

  for v_campaign in
    select distinct p_campaign_ids[u.position]
      from unnest(v_ords, v_outcomes) as u(position, outcome)
     where u.outcome <> 'released'
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
              when u.outcome <> 'released' and k.campaign_id = any(v_check) then 'recorded_check'
              else 'recorded' end
    from unnest(p_campaign_ids) with ordinality as k(campaign_id, ord)
    left join unnest(v_ords, v_outcomes) as u(position, outcome) on u.position = k.ord
   order by k.ord;
end;
$$;
comment on function public.record_send_outcomes(uuid[], uuid[], text[], text[], text[], timestamptz[]) is
  'record_send_outcome for many recipients in one transaction; one row per array position (ord): '
  'unchanged, recorded, or recorded_check (call finish_campaign_if_complete after the commit).';

--! split: 5-security.sql
-- Security (rerun-safe: roles are created only when missing; grants and revokes are idempotent).
-- Who may do what in this database. Nobody but the owner is a superuser or owns anything:
--   owner            runs `mailer migrate` and owns every object (the role that runs this file;
--                    make it a dedicated non-superuser role in production, because the SECURITY
--                    DEFINER functions below run with its rights);
--   mailer_app       what `mailer worker`, `mailer serve` and `mailer start` run as: the rows they
--                    change while sending and receiving events, customers and templates read-only,
--                    the suppression list and the audit trail append-only, and the graphile_worker
--                    queue (but not its migrations);
--   mailer_operator  people and the CLI: everything mailer_app may do, plus customers and
--                    templates, plus EXECUTE on the SECURITY DEFINER operator functions (pause,
--                    resume, suppress, unsuppress, retry jobs, resolve in-doubt recipients, ...).
-- Both are NOLOGIN group roles; logins are made members of one of them, e.g.
--   create role mailer_worker login password '...' in role mailer_app;
-- Roles are cluster-wide: they are created here only when missing (tolerating a concurrent
-- migration of another database in the same cluster), never dropped, and refused if someone gave
-- them superuser-like attributes. test/security/privileges.test.ts runs a whole campaign as a
-- member of mailer_app.

do $$
declare
  v_role text;
begin
  foreach v_role in array array['mailer_app', 'mailer_operator'] loop
    if not exists (select 1 from pg_catalog.pg_roles where rolname = v_role) then
      begin
        execute format('create role %I nologin', v_role);
      exception
        when duplicate_object or unique_violation then
          null; -- created at the same moment by a migration of another database
        when insufficient_privilege then
          raise exception 'role % does not exist and % may not create roles', v_role, current_user
            using hint = format('Ask a superuser to run: create role %I nologin;', v_role);
      end;
    end if;
    if exists (select 1 from pg_catalog.pg_roles
                where rolname = v_role
                  and (rolsuper or rolcreaterole or rolcreatedb or rolreplication or rolbypassrls)) then
      raise exception 'role % must not be a superuser, nor create roles or databases, replicate or bypass RLS',
        v_role using errcode = 'insufficient_privilege';
    end if;
  end loop;
  if not pg_catalog.pg_has_role('mailer_operator', 'mailer_app', 'member') then
    grant mailer_app to mailer_operator;
  end if;
  execute format('grant connect, temporary on database %I to mailer_app', pg_catalog.current_database());
end
$$;

--------------------------------------------------------------------------------------------------
-- public: the application's tables. Every table is operational data the application changes,
-- unless it is named below; a new table therefore works for mailer_app without a new grant.

revoke create on schema public from public;
grant usage on schema public to mailer_app;
grant select, insert, update, delete on all tables in schema public to mailer_app;
grant usage on all sequences in schema public to mailer_app;
alter default privileges in schema public grant select, insert, update, delete on tables to mailer_app;
alter default privileges in schema public grant usage on sequences to mailer_app;

-- Customers and templates are the operators' data: the application only reads them.
revoke insert, update, delete on public.customers, public.templates, public.template_contents
  from mailer_app;
grant insert, update, delete on public.customers, public.templates, public.template_contents
  to mailer_operator;

-- Compliance: an address on the suppression list is never mailed again, so the application may add
-- to it (events, unsubscribe links) but never change or remove an entry. Removing one is
-- unsuppress_email(), an operator function that records who did it and why.
revoke update, delete on public.suppression_list from mailer_app;

-- The audit trail is append-only for everyone but the owner.
do $$
begin
  if to_regclass('public.operator_actions') is not null then
    revoke update, delete on public.operator_actions from mailer_app;
  end if;
end
$$;

--------------------------------------------------------------------------------------------------
-- graphile_worker: the worker reads and writes its queue tables directly (getJobs, completeJobs,
-- failJobs are plain SQL, not functions), and our SQL calls its public functions, which run with
-- the caller's rights. Its migrations table stays read-only: a worker built for a newer
-- graphile-worker must not migrate the schema itself; `mailer migrate` (the owner) does that.

grant usage on schema graphile_worker to mailer_app;
grant select, insert, update, delete on all tables in schema graphile_worker to mailer_app;
grant usage, select on all sequences in schema graphile_worker to mailer_app;
revoke insert, update, delete on graphile_worker.migrations from mailer_app;
alter default privileges in schema graphile_worker
  grant select, insert, update, delete on tables to mailer_app;
alter default privileges in schema graphile_worker grant usage, select on sequences to mailer_app;

-- graphile-worker enables row level security on its queue tables, with no policy, so that API
-- layers (PostGraphile, Supabase) never expose them: only their owner sees a row. The worker's
-- role is not the owner, so it gets one policy per table, for itself only. (BYPASSRLS would do
-- the same for every table in the database.) A graphile-worker upgrade that recreates a table
-- drops its policy: test/security/privileges.test.ts then fails, and this block must run again.
do $$
declare
  v_table regclass;
begin
  for v_table in
    select c.oid::regclass from pg_catalog.pg_class c
     where c.relnamespace = 'graphile_worker'::regnamespace and c.relkind = 'r' and c.relrowsecurity
  loop
    execute format('drop policy if exists mailer_app_queue on %s', v_table);
    execute format('create policy mailer_app_queue on %s for all to mailer_app using (true) with check (true)',
                   v_table);
  end loop;
end
$$;

--------------------------------------------------------------------------------------------------
-- SECURITY DEFINER functions run with the owner's rights, so EXECUTE is the whole permission:
-- operators only, never PUBLIC (any role that can connect). Functions PostgreSQL creates are
-- executable by PUBLIC, so this is done for every such function, present and future (rerun).

do $$
declare
  v_function regprocedure;
begin
  for v_function in
    select p.oid::regprocedure from pg_catalog.pg_proc p
     where p.pronamespace = 'public'::regnamespace and p.prosecdef
  loop
    execute format('revoke all on function %s from public', v_function);
    execute format('grant execute on function %s to mailer_operator', v_function);
  end loop;
end
$$;

--! split: 6-maintenance.sql
-- Maintenance (rerun-safe: create or replace)

-- sns_messages only has to outlive SNS's redelivery window (hours); a week is generous.
create or replace function public.prune_sns_messages(p_keep interval) returns integer
  language sql volatile as $$
  with gone as (
    delete from public.sns_messages where received_at < now() - p_keep returning 1
  )
  select count(*)::integer from gone;
$$;
comment on function public.prune_sns_messages(interval) is
  'Forgets SNS MessageIds received longer ago than p_keep (redelivery dedupe only needs hours).';
