-- Reconciliation uses only a recipient's own evidence; the opt-in automatic resend (issue 15,
-- item 6). Rerun-safe: functions dropped first (reverse dependency order), then created.
--
-- reconcile_in_doubt took any event for the same address, from any campaign and with no upper
-- time bound: an event of campaign B settled campaign A's recipient and gave it B's message id,
-- and with one address in doubt in two campaigns both took the same event, the unique index on
-- ses_message_id failed the whole statement, and nothing anywhere was reconciled again.

drop function if exists public.auto_resend_in_doubt(interval, interval);
drop function if exists public.reconcile_in_doubt();
drop function if exists public.reconcile_in_doubt(interval);
drop function if exists public.in_doubt_evidence(uuid, uuid, text, timestamptz, interval);
drop function if exists public.ses_event_sent_at(jsonb);
drop function if exists public.ses_event_tags(jsonb);

-- Every message mailer sends carries these two EmailTags (src/ses/message.ts); SES copies them
-- into the events it publishes (eventType form: {"campaign_id": ["..."]}), never into identity
-- notifications (notificationType form), which have no tags.
create function public.ses_event_tags(p_event jsonb, out tagged boolean, out campaign_id uuid,
                                      out customer_id uuid)
  language sql immutable as $$
  select t.c is not null or t.u is not null,
         case when t.c ~* t.re and t.u ~* t.re then t.c::uuid end,
         case when t.c ~* t.re and t.u ~* t.re then t.u::uuid end
    from (select coalesce(p_event #>> '{mail,tags,campaign_id,0}', p_event #>> '{mail,tags,campaign_id}') as c,
                 coalesce(p_event #>> '{mail,tags,customer_id,0}', p_event #>> '{mail,tags,customer_id}') as u,
                 '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' as re) t;
$$;
comment on function public.ses_event_tags(jsonb) is
  'The campaign_id/customer_id EmailTags of an SES event: tagged when either is present; the ids '
  'only when both are UUIDs (then they name the one recipient the message was sent to).';

-- mail.timestamp is when SES accepted the message, whatever the event (a Delivery, a Complaint
-- days later): the moment to compare with the attempt. Null when missing or unreadable, so one
-- odd payload never fails a statement over many recipients.
create function public.ses_event_sent_at(p_event jsonb) returns timestamptz
  language plpgsql stable as $$
begin
  return (p_event #>> '{mail,timestamp}')::timestamptz;
exception when data_exception then
  return null;
end;
$$;
comment on function public.ses_event_sent_at(jsonb) is
  'When SES accepted the message an event is about (mail.timestamp), null when missing or unreadable.';

-- The SES events that may be a recipient's own evidence, and how each is tied to it:
--   'tags'             its campaign_id/customer_id EmailTags name this recipient;
--   'message id'       untagged, and apply_ses_event found the recipient by the message id it
--                      holds (events with tags naming someone else never count);
--   'address and time' untagged and unmatched, for this address, accepted by SES inside the
--                      attempt's window (from a minute before last_attempt_at, for clock skew, to
--                      the lease and a minute after it), and nobody else can own it: no other
--                      recipient holds its message id, and no other recipient of the address
--                      without a message id was attempted within the same window;
--   'ambiguous'        untagged and unmatched, inside the window, but another recipient could
--                      own it: evidence for nobody (the resend policy still waits for it).
-- Other recipients of the address are found by customer_id: customers.email is unique, so an
-- address is one customer (and that is indexed; campaign_recipients.email is not).
create function public.in_doubt_evidence(p_campaign_id uuid, p_customer_id uuid, p_email text,
                                         p_last_attempt_at timestamptz, p_lease interval)
  returns table (event_id uuid, event_type text, ses_message_id text, new_status text,
                 relation text, sent_at timestamptz)
  language sql stable as $$
  with candidates as (
    select e.event_id, e.event_type, e.ses_message_id, e.email, e.campaign_id, e.customer_id,
           e.payload, t.tagged, t.campaign_id as tag_campaign_id, t.customer_id as tag_customer_id,
           coalesce(public.ses_event_sent_at(e.payload), e.event_time) as sent_at
      from public.email_events_op e
      cross join lateral public.ses_event_tags(e.payload) t
     where ((e.campaign_id = p_campaign_id and e.customer_id = p_customer_id) or e.email = p_email)
       and e.event_type in ('send', 'delivery', 'delivery_delay', 'open', 'click', 'bounce',
                            'complaint', 'reject', 'rendering_failure')
  ), judged as (
    select c.*,
           case
             when c.tag_campaign_id is not null then
               case when c.tag_campaign_id = p_campaign_id and c.tag_customer_id = p_customer_id
                    then 'tags' end
             when c.campaign_id is not null then
               case when c.campaign_id = p_campaign_id and c.customer_id = p_customer_id
                    then 'message id' end
             when c.tagged then null
             when c.email = p_email
                  and c.sent_at between p_last_attempt_at - interval '1 minute'
                                    and p_last_attempt_at + p_lease + interval '1 minute' then
               case when not exists (select 1 from public.campaign_recipients o
                                      where o.ses_message_id = c.ses_message_id)
                         and not exists (
                           select 1 from public.campaign_recipients o
                            where o.customer_id = p_customer_id and o.email = p_email
                              and o.campaign_id <> p_campaign_id and o.ses_message_id is null
                              and o.last_attempt_at between c.sent_at - p_lease - interval '1 minute'
                                                        and c.sent_at + interval '1 minute')
                    then 'address and time' else 'ambiguous' end
           end as relation
      from candidates c
  )
  select j.event_id, j.event_type, j.ses_message_id,
         case when j.event_type = 'complaint' then 'complained'
              when j.event_type = 'bounce' and j.payload #>> '{bounce,bounceType}' = 'Permanent' then 'bounced'
              when j.event_type in ('reject', 'rendering_failure') then 'failed'
              else 'sent' end,
         j.relation, j.sent_at
    from judged j
   where j.relation is not null;
$$;
comment on function public.in_doubt_evidence(uuid, uuid, text, timestamptz, interval) is
  'The SES events that may settle one in-doubt recipient (campaign, customer, address, last '
  'attempt, claim lease): relation tags, message id or address and time (its own), or ambiguous '
  '(untagged, and another recipient could own it); new_status is what the event makes it.';

create function public.reconcile_in_doubt(p_lease interval default interval '120 seconds')
  returns table (campaign_id uuid, customer_id uuid, recipient_status text, event_id uuid,
                 event_type text, error text)
  language plpgsql volatile as $$
#variable_conflict use_column
declare
  v_recipient record;
  v_evidence record;
begin
  for v_recipient in
    select r.campaign_id, r.customer_id, r.email, r.last_attempt_at
      from public.campaign_recipients r
     where r.recipient_status = 'in_doubt'
     order by r.last_attempt_at, r.campaign_id, r.customer_id
       for update of r skip locked
  loop
    campaign_id := v_recipient.campaign_id;
    customer_id := v_recipient.customer_id;
    -- One recipient at a time, each in its own subtransaction: whatever goes wrong with one is
    -- reported and the others are still settled.
    begin
      select ev.* into v_evidence
        from public.in_doubt_evidence(v_recipient.campaign_id, v_recipient.customer_id,
                                      v_recipient.email, v_recipient.last_attempt_at, p_lease) ev
       where ev.relation <> 'ambiguous'
       order by case ev.new_status when 'complained' then 0 when 'bounced' then 1
                                   when 'failed' then 2 else 3 end,
                ev.sent_at, ev.event_id
       limit 1;
      if found then
        update public.campaign_recipients r
           set recipient_status = v_evidence.new_status,
               -- The message id only when no other recipient holds it (a unique index).
               ses_message_id = coalesce(r.ses_message_id,
                 case when not exists (select 1 from public.campaign_recipients o
                                        where o.ses_message_id = v_evidence.ses_message_id)
                      then v_evidence.ses_message_id end),
               last_error = format('in doubt; reconciled from SES %s event %s (matched by %s)',
                                   v_evidence.event_type, v_evidence.event_id, v_evidence.relation)
         where r.campaign_id = v_recipient.campaign_id and r.customer_id = v_recipient.customer_id;
        recipient_status := v_evidence.new_status;
        event_id := v_evidence.event_id;
        event_type := v_evidence.event_type;
        error := null;
        return next;
      end if;
    exception when others then
      recipient_status := 'in_doubt';
      event_id := null;
      event_type := null;
      error := format('%s (SQLSTATE %s)', sqlerrm, sqlstate);
      return next;
    end;
  end loop;
end;
$$;
comment on function public.reconcile_in_doubt(interval) is
  'Settles in_doubt recipients with their own SES evidence only (in_doubt_evidence; p_lease is '
  'SEND_CLAIM_LEASE_SECONDS, the attempt''s window): complaint -> complained, permanent bounce -> '
  'bounced, reject/rendering failure -> failed, any other delivery event -> sent. One row per '
  'recipient settled, or per recipient that failed (error set; the others are still settled). '
  'Recipients without evidence stay in_doubt.';

-- The automatic decision is recorded like an operator's, under its own action.
-- Several current migration files extend this list: add to whatever it allows now.
do $$
declare
  v_actions text[];
begin
  select array_agg(m[1] order by m[1]) into v_actions
    from pg_catalog.pg_constraint k,
         regexp_matches(pg_catalog.pg_get_constraintdef(k.oid), '''([a-z_]+)''', 'g') m
   where k.conrelid = 'public.operator_actions'::regclass
     and k.conname = 'operator_actions_action_check';
  if not 'auto_resend' = any(v_actions) then
    alter table public.operator_actions drop constraint operator_actions_action_check;
    execute format('alter table public.operator_actions add constraint operator_actions_action_check '
                   'check (action in (%s))',
                   (select string_agg(quote_literal(a), ', ') from unnest(v_actions || 'auto_resend'::text) a));
  end if;
end
$$;
comment on table public.operator_actions is
  'Audit trail of operator acts (unsuppress, in-doubt decisions, job retries, campaign control), '
  'whoever made them: CLI or psql; and of the automatic decisions taken in their place '
  '(auto_resend: IN_DOUBT_RESEND_AFTER_MINUTES, details.automatic true).';

-- IN_DOUBT_RESEND_AFTER_MINUTES (off unless set; the reconcile_in_doubt task calls this only when
-- SES_CONFIGURATION_SET publishes Send events to a topic the webhook accepts, asked of SES at each
-- run). A recipient in doubt for p_after with no event that may be its own was most likely never
-- accepted by SES (SES publishes a Send event for every message it accepts): it is queued again,
-- once. It is kept in doubt (for an operator) while that cannot be told: an ambiguous event; no
-- Send event received since its attempt for any message (events may not be reaching mailer);
-- SES events received before p_after elapsed still waiting to be applied.
create function public.auto_resend_in_doubt(p_after interval,
                                            p_lease interval default interval '120 seconds')
  returns table (campaign_id uuid, customer_id uuid, resent boolean, result text)
  language plpgsql volatile as $$
#variable_conflict use_column
declare
  v_candidate record;
  v_recipient public.campaign_recipients;
  v_campaign_status text;
begin
  if p_after is null or p_after < interval '0' then
    raise exception 'auto_resend_in_doubt: p_after must be a positive interval, got %', p_after
      using errcode = 'invalid_parameter_value';
  end if;
  for v_candidate in
    select r.campaign_id, r.customer_id
      from public.campaign_recipients r
     where r.recipient_status = 'in_doubt' and r.last_attempt_at <= now() - p_after
       and not exists (select 1 from public.operator_actions a
                        where a.action = 'auto_resend' and a.campaign_id = r.campaign_id
                          and a.customer_id = r.customer_id)
     order by r.campaign_id, r.customer_id
  loop
    campaign_id := v_candidate.campaign_id;
    customer_id := v_candidate.customer_id;
    resent := false;
    begin
      -- The campaign first, as resolve_in_doubt: its status says how the recipient is queued.
      select c.status into v_campaign_status from public.campaigns c
       where c.campaign_id = v_candidate.campaign_id for update;
      select * into v_recipient from public.campaign_recipients r
       where r.campaign_id = v_candidate.campaign_id and r.customer_id = v_candidate.customer_id
         for update skip locked;
      if not found or v_recipient.recipient_status <> 'in_doubt' then
        continue; -- settled meanwhile, or being settled by an event right now
      end if;
      if exists (select 1 from public.in_doubt_evidence(v_recipient.campaign_id,
                   v_recipient.customer_id, v_recipient.email, v_recipient.last_attempt_at, p_lease)) then
        result := 'kept in doubt: an SES event for its address may be its own';
      elsif not exists (select 1 from public.email_events_op s
                         where s.created_at > v_recipient.last_attempt_at
                           and s.event_type = 'send' and s.event_time > v_recipient.last_attempt_at) then
        result := 'kept in doubt: no Send event for any message sent since its attempt has reached '
                  'mailer, so the absence of its own proves nothing';
      elsif exists (select 1 from graphile_worker.jobs j
                     where j.task_identifier = 'process_ses_event' and j.attempts < j.max_attempts
                       and j.created_at <= v_recipient.last_attempt_at + p_after) then
        result := 'kept in doubt: SES events received in time to settle it are still waiting to be applied';
      else
        update public.campaign_recipients r
           set recipient_status = 'pending',
               last_error = format('in doubt; no SES Send event %s after the attempt: resent '
                                   'automatically, once (IN_DOUBT_RESEND_AFTER_MINUTES)', p_after)
         where r.campaign_id = v_recipient.campaign_id and r.customer_id = v_recipient.customer_id;
        if v_campaign_status = 'done' then
          update public.campaigns c set status = 'queued' where c.campaign_id = v_recipient.campaign_id;
          result := 'pending; campaign queued again to send it';
        elsif v_campaign_status in ('queued', 'sending') then
          perform graphile_worker.add_job('send_recipient',
            json_build_object('campaign_id', v_recipient.campaign_id,
                              'customer_id', v_recipient.customer_id),
            job_key => format('send_recipient:%s:%s', v_recipient.campaign_id, v_recipient.customer_id));
          result := 'pending; send_recipient job added';
        else
          result := format('pending; campaign is %s: it is sent when the campaign is resumed',
                           v_campaign_status);
        end if;
        perform public.record_operator_action('auto_resend', v_recipient.email,
          v_recipient.campaign_id, v_recipient.customer_id,
          format('automatic: no SES Send event %s after the attempt', p_after),
          jsonb_build_object('automatic', true, 'policy', 'IN_DOUBT_RESEND_AFTER_MINUTES',
                             'after_seconds', extract(epoch from p_after),
                             'attempt_count', v_recipient.attempt_count,
                             'last_attempt_at', v_recipient.last_attempt_at,
                             'last_error', v_recipient.last_error));
        resent := true;
      end if;
      return next;
    exception when others then
      resent := false;
      result := format('error: %s (SQLSTATE %s)', sqlerrm, sqlstate);
      return next;
    end;
  end loop;
end;
$$;
comment on function public.auto_resend_in_doubt(interval, interval) is
  'IN_DOUBT_RESEND_AFTER_MINUTES: queues again, once, each in_doubt recipient attempted more than '
  'p_after ago with no SES event that may be its own, provided Send events of later messages '
  'reached mailer and the events received in time are applied; recorded in operator_actions as '
  'auto_resend (details.automatic). Call it only when the configuration set publishes Send '
  'events. One row per recipient looked at: resent, or why it was kept in doubt.';

-- apply_ses_event had the same flaw through the message id: it looked the recipient up by message
-- id first, so an event whose message id the old reconciliation had given to another campaign's
-- recipient was applied to that one. The tags name the recipient the message was sent to; the
-- message id is the fallback for identity notifications (no tags). A message id is recorded only
-- when no other recipient holds it, so such an event is never refused by the unique index.
create or replace function public.apply_ses_event(
  p_event jsonb, p_max_bounce_rate numeric, p_max_complaint_rate numeric, p_min_sent integer,
  out event_id uuid, out event_type text, out ses_message_id text, out campaign_id uuid,
  out customer_id uuid, out effect text, out paused_reason text
) returns record
  language plpgsql volatile as $$
#variable_conflict use_column
declare
  v_type text := public.ses_event_type(p_event);
  v_mail jsonb := coalesce(p_event -> 'mail', '{}');
  v_message_id text := nullif(btrim(p_event #>> '{mail,messageId}'), '');
  v_new_message_id text;
  v_detail jsonb;
  v_addresses text[];
  v_recipient public.campaign_recipients;
  v_tags record;
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

  -- The recipient: the one its campaign_id/customer_id tags name; failing that (an identity
  -- notification has no tags) the one holding the message id SES returned to send_recipient.
  select * into v_tags from public.ses_event_tags(p_event);
  if v_tags.campaign_id is not null then
    select * into v_recipient from public.campaign_recipients r
     where r.campaign_id = v_tags.campaign_id and r.customer_id = v_tags.customer_id
       for update;
  end if;
  if v_recipient.campaign_id is null and v_message_id is not null then
    select * into v_recipient from public.campaign_recipients r
     where r.ses_message_id = v_message_id for update;
  end if;
  if v_message_id is not null and v_recipient.campaign_id is not null
     and not exists (select 1 from public.campaign_recipients o
                      where o.ses_message_id = v_message_id
                        and (o.campaign_id, o.customer_id)
                            <> (v_recipient.campaign_id, v_recipient.customer_id)) then
    v_new_message_id := v_message_id;
  end if;

  if v_type in ('send', 'delivery') then
    -- SES has the message: whatever the worker could not record (in_doubt), it was sent.
    update public.campaign_recipients
       set recipient_status = 'sent', ses_message_id = coalesce(ses_message_id, v_new_message_id),
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
       set recipient_status = 'bounced', ses_message_id = coalesce(ses_message_id, v_new_message_id),
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
       set recipient_status = 'complained', ses_message_id = coalesce(ses_message_id, v_new_message_id),
           last_error = format('complaint (%s)', coalesce(v_detail ->> 'complaintFeedbackType', 'no type'))
     where campaign_id = v_recipient.campaign_id and customer_id = v_recipient.customer_id
       and recipient_status in ('sending', 'sent', 'in_doubt', 'unsubscribed');
    v_effect := format('%s; %s address(es) newly suppressed',
                       case when found then 'recipient complained' else 'recipient unchanged' end, v_count);

  elsif v_type in ('reject', 'rendering_failure') then
    update public.campaign_recipients
       set recipient_status = 'failed', ses_message_id = coalesce(ses_message_id, v_new_message_id),
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
