--
-- PostgreSQL database dump
--

--
-- Name: send_claim; Type: TYPE; Schema: public; Owner: -
--

CREATE TYPE public.send_claim AS (
	outcome text,
	email text,
	template_data jsonb,
	provider text,
	provider_template_name text,
	template_id uuid,
	attempt_count integer
);

--
-- Name: TYPE send_claim; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TYPE public.send_claim IS 'What claim_recipient decided, and what the worker needs to send.';

--
-- Name: activate_template(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.activate_template(p_template_id uuid) RETURNS integer
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION activate_template(p_template_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.activate_template(p_template_id uuid) IS 'Makes this version the one its week uses: it becomes active and every other version of the week inactive (a rollback is activating an older version). Campaigns already generated keep theirs.';

--
-- Name: templates; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.templates (
    template_id uuid DEFAULT gen_random_uuid() NOT NULL,
    provider text NOT NULL,
    provider_template_name text NOT NULL,
    week_of_month integer NOT NULL,
    version integer DEFAULT 1 NOT NULL,
    is_active boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT templates_provider_check CHECK ((provider = ANY (ARRAY['ses'::text, 'internal'::text]))),
    CONSTRAINT templates_version_check CHECK ((version >= 1)),
    CONSTRAINT templates_week_of_month_check CHECK (((week_of_month >= 1) AND (week_of_month <= 4)))
);

--
-- Name: TABLE templates; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.templates IS 'Email templates, one line of versions per week of the month; campaigns use the highest active version.';

--
-- Name: COLUMN templates.template_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.templates.template_id IS 'Primary key.';

--
-- Name: COLUMN templates.provider; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.templates.provider IS 'ses: stored in SES and sent by TemplateName; internal: rendered by mailer from template_contents.';

--
-- Name: COLUMN templates.provider_template_name; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.templates.provider_template_name IS 'The SES template name (provider ses) or a human name for the internal template.';

--
-- Name: COLUMN templates.week_of_month; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.templates.week_of_month IS 'Which weekly campaign (1-4) this template is for.';

--
-- Name: COLUMN templates.version; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.templates.version IS 'Version within the week; unique per week, highest active wins.';

--
-- Name: COLUMN templates.is_active; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.templates.is_active IS 'Inactive templates are never picked for new campaigns.';

--
-- Name: COLUMN templates.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.templates.created_at IS 'When the row was inserted.';

--
-- Name: add_template(text, text, integer, integer, text, text, text, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.add_template(p_provider text, p_name text, p_week integer, p_version integer, p_subject text, p_html text, p_text text, p_active boolean) RETURNS public.templates
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION add_template(p_provider text, p_name text, p_week integer, p_version integer, p_subject text, p_html text, p_text text, p_active boolean); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.add_template(p_provider text, p_name text, p_week integer, p_version integer, p_subject text, p_html text, p_text text, p_active boolean) IS 'Adds a template version for a week (version null: the next one), with its content for provider internal. Active by default: the highest active version of a week is the one new campaigns use.';

--
-- Name: apply_customer_import(boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.apply_customer_import(p_set_is_active boolean, OUT inserted bigint, OUT updated bigint, OUT unchanged bigint) RETURNS record
    LANGUAGE plpgsql
    SET work_mem TO '64MB'
    AS $$
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

--
-- Name: FUNCTION apply_customer_import(p_set_is_active boolean, OUT inserted bigint, OUT updated bigint, OUT unchanged bigint); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.apply_customer_import(p_set_is_active boolean, OUT inserted bigint, OUT updated bigint, OUT unchanged bigint) IS 'Upserts the valid, first-occurrence rows of the staged import by email in one statement; returns how many customers were inserted, updated, or already identical.';

--
-- Name: apply_ses_event(jsonb, numeric, numeric, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.apply_ses_event(p_event jsonb, p_max_bounce_rate numeric, p_max_complaint_rate numeric, p_min_sent integer, OUT event_id uuid, OUT event_type text, OUT ses_message_id text, OUT campaign_id uuid, OUT customer_id uuid, OUT effect text, OUT paused_reason text) RETURNS record
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION apply_ses_event(p_event jsonb, p_max_bounce_rate numeric, p_max_complaint_rate numeric, p_min_sent integer, OUT event_id uuid, OUT event_type text, OUT ses_message_id text, OUT campaign_id uuid, OUT customer_id uuid, OUT effect text, OUT paused_reason text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.apply_ses_event(p_event jsonb, p_max_bounce_rate numeric, p_max_complaint_rate numeric, p_min_sent integer, OUT event_id uuid, OUT event_type text, OUT ses_message_id text, OUT campaign_id uuid, OUT customer_id uuid, OUT effect text, OUT paused_reason text) IS 'Records one SES event in email_events_op and applies its effect: permanent bounce -> suppression (bounce_hard) + bounced; complaint -> suppression (complaint) + complained; send/delivery -> sending/in_doubt become sent; reject/rendering failure -> failed; subscription unsubscribeAll -> suppression (unsubscribe) + unsubscribed; others are recorded only. Runs the reputation guard after bounces and complaints; paused_reason says why it paused the campaign.';

--
-- Name: approve_campaign_queue(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.approve_campaign_queue(p_campaign_id uuid) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
declare
  v_request public.campaign_queue_requests;
  v_actor text := coalesce(nullif(current_setting('mailer.actor', true), ''), session_user);
begin
  select * into v_request from public.campaign_queue_requests
   where campaign_id = p_campaign_id and approved_by is null for update;
  if not found then
    raise exception 'approve_campaign_queue: nobody asked for campaign % to be queued',
      p_campaign_id using errcode = 'no_data_found';
  end if;
  if v_request.requested_by = v_actor then
    raise exception 'approve_campaign_queue: % asked for it; another person must approve', v_actor
      using errcode = 'insufficient_privilege';
  end if;
  update public.campaign_queue_requests set approved_by = v_actor, approved_at = now()
   where request_id = v_request.request_id;
  perform public.record_operator_action('queue_approved', null, p_campaign_id, null, null,
    jsonb_build_object('request_id', v_request.request_id,
                       'requested_by', v_request.requested_by));
  return public.queue_campaign(p_campaign_id);
end;
$$;

--
-- Name: FUNCTION approve_campaign_queue(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.approve_campaign_queue(p_campaign_id uuid) IS 'Approves the pending queue request of a campaign (by someone other than who asked) and queues it; returns its status. Recorded as queue_approved and queue_campaign.';

--
-- Name: auto_pause_campaign(uuid, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.auto_pause_campaign(p_campaign_id uuid, p_reason text) RETURNS boolean
    LANGUAGE sql
    AS $$
  with paused as (
    update public.campaigns set status = 'paused', pause_reason = p_reason
     where campaign_id = p_campaign_id and status in ('queued', 'sending')
    returning campaign_id)
  select public.record_automatic_pause(p.campaign_id, p_reason, 'failure-guard') is not null
    from paused p;
$$;

--
-- Name: FUNCTION auto_pause_campaign(p_campaign_id uuid, p_reason text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.auto_pause_campaign(p_campaign_id uuid, p_reason text) IS 'Pauses a queued or sending campaign for p_reason (shown by campaign status/list), recorded as auto_pause by mailer:failure-guard; true when this call paused it.';

--
-- Name: auto_resend_in_doubt(interval, interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.auto_resend_in_doubt(p_after interval, p_lease interval DEFAULT '00:02:00'::interval) RETURNS TABLE(campaign_id uuid, customer_id uuid, resent boolean, result text)
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION auto_resend_in_doubt(p_after interval, p_lease interval); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.auto_resend_in_doubt(p_after interval, p_lease interval) IS 'IN_DOUBT_RESEND_AFTER_MINUTES: queues again, once, each in_doubt recipient attempted more than p_after ago with no SES event that may be its own, provided Send events of later messages reached mailer and the events received in time are applied; recorded in operator_actions as auto_resend (details.automatic). Call it only when the configuration set publishes Send events. One row per recipient looked at: resent, or why it was kept in doubt.';

--
-- Name: begin_campaign_generation(integer, date, boolean, interval, text, boolean, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.begin_campaign_generation(p_week_of_month integer, p_generated_date date, p_send boolean, p_token_ttl interval, p_public_url text, p_force boolean DEFAULT false, p_first_chunk integer DEFAULT NULL::integer) RETURNS uuid
    LANGUAGE plpgsql
    AS $$
declare
  v_template public.templates;
  v_campaign_id uuid;
begin
  if p_week_of_month is null or p_week_of_month not between 1 and 4 then
    raise exception 'generate_campaign: week_of_month must be 1-4, got %', p_week_of_month
      using errcode = 'invalid_parameter_value';
  end if;
  if p_generated_date is null then
    raise exception 'generate_campaign: generated_date is required' using errcode = 'invalid_parameter_value';
  end if;
  -- One generation per (month, week) at a time: two of them on different dates would each find
  -- no other campaign.
  perform pg_advisory_xact_lock(hashtext('public.generate_campaign'),
    (extract(year from p_generated_date)::integer * 100
     + extract(month from p_generated_date)::integer) * 10 + p_week_of_month);

  select campaign_id into v_campaign_id from public.campaigns
   where week_of_month = p_week_of_month and generated_date = p_generated_date;
  if found then
    -- Already generated, or still generating (a rerun after a crash: the chunks carry on).
    return v_campaign_id;
  end if;
  perform public.check_campaign_identity('generate_campaign', p_week_of_month, p_generated_date,
                                        p_force);

  select * into v_template from public.templates
   where week_of_month = p_week_of_month and is_active
   order by version desc limit 1;
  if not found then
    raise exception 'generate_campaign: no active template for week %', p_week_of_month
      using errcode = 'no_data_found';
  end if;

  insert into public.campaigns (campaign_name, week_of_month, generated_date, template_id, generating)
  values (format('week %s, %s', p_week_of_month, p_generated_date), p_week_of_month,
          p_generated_date, v_template.template_id, true)
  on conflict (week_of_month, generated_date) do nothing
  returning campaign_id into v_campaign_id;

  if v_campaign_id is null then
    -- Inserted by hand meanwhile (generation itself is serialised by the lock above).
    select campaign_id into v_campaign_id from public.campaigns
     where week_of_month = p_week_of_month and generated_date = p_generated_date;
    return v_campaign_id;
  end if;

  -- The lanes with the campaign: the feeder reads them from its first feed on.
  perform public.plan_campaign_generation(v_campaign_id);
  -- A first chunk before queueing: the queue trigger feeds it in this transaction, so sending
  -- starts when this commits.
  perform public.generate_campaign_chunk(v_campaign_id, p_token_ttl, p_public_url,
    coalesce(p_first_chunk, public.mailer_setting('generation_first_chunk', 2000)), 0);
  if p_send then
    update public.campaigns set status = 'queued' where campaign_id = v_campaign_id;
  end if;
  return v_campaign_id;
end;
$$;

--
-- Name: FUNCTION begin_campaign_generation(p_week_of_month integer, p_generated_date date, p_send boolean, p_token_ttl interval, p_public_url text, p_force boolean, p_first_chunk integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.begin_campaign_generation(p_week_of_month integer, p_generated_date date, p_send boolean, p_token_ttl interval, p_public_url text, p_force boolean, p_first_chunk integer) IS 'Creates the week''s campaign (generating) with its first p_first_chunk recipients and queues it when p_send; generate_campaign_chunk adds the rest. Returns the existing campaign for a week and date that has one (generated, or still generating). Same checks as generate_campaign.';

--
-- Name: begin_customer_import(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.begin_customer_import() RETURNS void
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION begin_customer_import(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.begin_customer_import() IS 'Creates (or empties) the session''s pg_temp.customer_import staging table. COPY into it (line, raw_email, name, company, country, is_active, csv_problem), analyze it, then call customer_import_summary(), apply_customer_import() and customer_import_problems() on the same connection.';

--
-- Name: campaign_accepted_since(uuid, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.campaign_accepted_since(p_campaign_id uuid, p_since timestamp with time zone) RETURNS TABLE(accepted bigint, last_accepted_at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $$
  -- Both read campaign_recipients_accepted_at_idx only (its predicate is repeated here): a range
  -- scan of the window, and the last entry of the campaign's range.
  select (select count(*) from public.campaign_recipients r
           where r.campaign_id = p_campaign_id and r.updated_at > p_since
             and r.recipient_status = 'sent' and r.ses_message_id is not null),
         (select max(r.updated_at) from public.campaign_recipients r
           where r.campaign_id = p_campaign_id
             and r.recipient_status = 'sent' and r.ses_message_id is not null);
$$;

--
-- Name: FUNCTION campaign_accepted_since(p_campaign_id uuid, p_since timestamp with time zone); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.campaign_accepted_since(p_campaign_id uuid, p_since timestamp with time zone) IS 'How many of the campaign''s sends SES accepted (recorded as sent with a message id) after p_since, and when the last one was: the live send rate, and whether sending has stalled.';

--
-- Name: campaign_progress(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.campaign_progress(p_campaign_id uuid) RETURNS TABLE(status text, recipients bigint, pending bigint, sending bigint, sent bigint, in_doubt bigint, failed bigint, suppressed bigint, bounced bigint, complained bigint, unsubscribed bigint, accepted bigint, bounce_rate numeric, complaint_rate numeric, first_attempt_at timestamp with time zone, last_attempt_at timestamp with time zone, attempts_last_minute bigint)
    LANGUAGE sql STABLE
    AS $$
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

--
-- Name: FUNCTION campaign_progress(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.campaign_progress(p_campaign_id uuid) IS 'Recipient counts per status, accepted (SES returned a message id), bounce and complaint rates (bounced or complained over accepted) and attempt times, for mailer campaign status. No row: no such campaign.';

--
-- Name: campaign_report(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.campaign_report(p_campaign_id uuid) RETURNS TABLE(campaign_id uuid, campaign_name text, status text, pause_reason text, generating boolean, created_at timestamp with time zone, started_at timestamp with time zone, last_attempt_at timestamp with time zone, finished_at timestamp with time zone, recipients bigint, pending bigint, sending bigint, sent bigint, in_doubt bigint, failed bigint, suppressed bigint, bounced bigint, complained bigint, unsubscribed bigint, accepted bigint, delivered bigint, opened bigint, clicked bigint, bounce_rate numeric, complaint_rate numeric)
    LANGUAGE sql STABLE
    AS $$
  -- One pass over the campaign's recipients (a report runs once, not every two seconds), and the
  -- events through email_events_op_campaign_idx. Started: the first send attempt still recorded
  -- (a resend moves its recipient's); finished: when the campaign became done (its last update).
  -- Delivered, opened and clicked count recipients with at least one such event, within the
  -- events kept (EVENTS_RETENTION_DAYS).
  with r as (
    select count(*) as recipients,
           count(*) filter (where x.recipient_status = 'pending') as pending,
           count(*) filter (where x.recipient_status = 'sending') as sending,
           count(*) filter (where x.recipient_status = 'sent') as sent,
           count(*) filter (where x.recipient_status = 'in_doubt') as in_doubt,
           count(*) filter (where x.recipient_status = 'failed') as failed,
           count(*) filter (where x.recipient_status = 'suppressed') as suppressed,
           count(*) filter (where x.recipient_status = 'bounced') as bounced,
           count(*) filter (where x.recipient_status = 'complained') as complained,
           count(*) filter (where x.recipient_status = 'unsubscribed') as unsubscribed,
           count(*) filter (where x.ses_message_id is not null) as accepted,
           min(x.last_attempt_at) as started_at, max(x.last_attempt_at) as last_attempt_at
      from public.campaign_recipients x
     where x.campaign_id = p_campaign_id
  ), ev as (
    select count(distinct e.customer_id) filter (where e.event_type = 'delivery') as delivered,
           count(distinct e.customer_id) filter (where e.event_type = 'open') as opened,
           count(distinct e.customer_id) filter (where e.event_type = 'click') as clicked
      from public.email_events_op e
     where e.campaign_id = p_campaign_id and e.event_type in ('delivery', 'open', 'click')
  )
  select c.campaign_id, c.campaign_name, c.status, c.pause_reason, c.generating, c.created_at,
         r.started_at, r.last_attempt_at,
         case when c.status = 'done' then c.updated_at end,
         r.recipients, r.pending, r.sending, r.sent, r.in_doubt, r.failed, r.suppressed,
         r.bounced, r.complained, r.unsubscribed, r.accepted, ev.delivered, ev.opened, ev.clicked,
         round(r.bounced::numeric / nullif(r.accepted, 0), 6),
         round(r.complained::numeric / nullif(r.accepted, 0), 6)
    from public.campaigns c cross join r cross join ev
   where c.campaign_id = p_campaign_id;
$$;

--
-- Name: FUNCTION campaign_report(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.campaign_report(p_campaign_id uuid) IS 'A campaign''s report: start, last attempt and finish, recipients by status, delivered, opened and clicked from its SES events, bounce and complaint rates over accepted sends.';

--
-- Name: campaign_report_recipients(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.campaign_report_recipients(p_campaign_id uuid) RETURNS TABLE(customer_id uuid, email text, recipient_status text, last_error text, ses_message_id text, attempt_count integer, last_attempt_at timestamp with time zone, updated_at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $$
  select r.customer_id, r.email, r.recipient_status, r.last_error, r.ses_message_id,
         r.attempt_count, r.last_attempt_at, r.updated_at
    from public.campaign_recipients r
   where r.campaign_id = p_campaign_id
     and r.recipient_status in ('failed', 'bounced', 'complained', 'in_doubt')
   order by array_position(array['failed', 'bounced', 'complained', 'in_doubt'], r.recipient_status),
            r.email;
$$;

--
-- Name: FUNCTION campaign_report_recipients(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.campaign_report_recipients(p_campaign_id uuid) IS 'The recipients of a campaign an operator acts on: failed, bounced, complained and in doubt, with the error or event that put them there.';

--
-- Name: campaign_send_errors(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.campaign_send_errors(p_campaign_id uuid) RETURNS TABLE(recipient_status text, kind text, recipients bigint, last_at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $$
  -- last_error is "Name: message (HTTP n)" (src/ses/errors.ts errorMessage), "SES: Name: ..." for
  -- an account error that paused the campaign, or a sentence of mailer's own (an expired claim).
  -- The kind is the error's name; a bare Node "Error" is named by its system code (ECONNREFUSED).
  select e.recipient_status, e.kind, count(*), max(e.updated_at)
    from (select r.recipient_status, r.updated_at,
                 case
                   when n.name is null then left(r.last_error, 60)
                   when n.name = 'Error' then coalesce(substring(r.last_error from '\m(E[A-Z]{4,})\M'), n.name)
                   else n.name
                 end as kind
            from public.campaign_recipients r
            cross join lateral (select substring(r.last_error
                                                 from '^(?:SES: )?([A-Za-z][A-Za-z0-9_.]*): ') as name) n
           where r.campaign_id = p_campaign_id and r.last_error is not null
             and r.recipient_status in ('pending', 'failed', 'in_doubt')) e
   group by e.recipient_status, e.kind
   order by count(*) desc, e.recipient_status, e.kind;
$$;

--
-- Name: FUNCTION campaign_send_errors(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.campaign_send_errors(p_campaign_id uuid) IS 'Unsettled recipients of a campaign by the error of their last send: failed (SES refused them), in_doubt, or pending (waiting after an outage or an account error), by error name.';

--
-- Name: check_campaign_identity(text, integer, date, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.check_campaign_identity(p_caller text, p_week integer, p_date date, p_force boolean) RETURNS void
    LANGUAGE plpgsql STABLE
    AS $$
declare
  v_week integer := public.week_of_month(p_date);
  v_month date := date_trunc('month', p_date)::date;
  v_other public.campaigns;
begin
  if coalesce(p_force, false) then
    return;
  end if;
  if v_week <> p_week then
    raise exception '%: %', p_caller, case when v_week > 4
      then format('%s is in week 5 of its month (days 29-31), which has no campaign; a campaign '
                  'for week %s needs a date from %s to %s', p_date, p_week,
                  v_month + (p_week - 1) * 7, v_month + p_week * 7 - 1)
      else format('%s is in week %s of its month (days %s-%s), not week %s; week %s of %s is %s to %s',
                  p_date, v_week, v_week * 7 - 6, v_week * 7, p_week, p_week,
                  to_char(v_month, 'YYYY-MM'), v_month + (p_week - 1) * 7, v_month + p_week * 7 - 1)
      end
      using errcode = 'invalid_parameter_value',
            hint = 'give the date and the week together right, or force it (p_force => true, --force)';
  end if;
  select * into v_other from public.campaigns c
   where c.week_of_month = p_week and c.generated_date <> p_date
     and c.generated_date >= v_month and c.generated_date < (v_month + interval '1 month')::date
   order by c.created_at limit 1;
  if found then
    raise exception '%: week % of % already has campaign % (%, %): a second one would mail the '
      'same content again', p_caller, p_week, to_char(v_month, 'YYYY-MM'), v_other.campaign_id,
      v_other.campaign_name, v_other.status
      using errcode = 'unique_violation',
            hint = 'to send it anyway, force it (p_force => true, --force)';
  end if;
end;
$$;

--
-- Name: FUNCTION check_campaign_identity(p_caller text, p_week integer, p_date date, p_force boolean); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.check_campaign_identity(p_caller text, p_week integer, p_date date, p_force boolean) IS 'For p_caller''s message: refuses (unless p_force) a campaign whose date is not in its week of the month (invalid_parameter_value), or a second campaign for a (month, week) that has one on another date (unique_violation).';

--
-- Name: check_campaign_reputation(uuid, numeric, numeric, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.check_campaign_reputation(p_campaign_id uuid, p_max_bounce_rate numeric, p_max_complaint_rate numeric, p_min_sent integer) RETURNS text
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION check_campaign_reputation(p_campaign_id uuid, p_max_bounce_rate numeric, p_max_complaint_rate numeric, p_min_sent integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.check_campaign_reputation(p_campaign_id uuid, p_max_bounce_rate numeric, p_max_complaint_rate numeric, p_min_sent integer) IS 'Pauses a queued/sending campaign whose permanent-bounce or complaint rate over its sent recipients (ses_message_id set) is above the given fraction, once p_min_sent were sent. Returns why it paused it, or null.';

--
-- Name: claim_recipient(uuid, uuid, interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.claim_recipient(p_campaign_id uuid, p_customer_id uuid, p_lease interval) RETURNS public.send_claim
    LANGUAGE plpgsql
    AS $$
declare
  r public.campaign_recipients;
  v_campaign_status text;
  v_provider text;
  v_template_name text;
  v_template_id uuid;
  v_result public.send_claim;
begin
  -- The campaign row first (the lock order), only when the campaign is not sending: a queued one
  -- is updated to sending below, and one that is not sendable may be changing status right now.
  -- A resume in flight is waited for before deciding: a job taken while its campaign was being
  -- resumed may have no successor job (graphile-worker's add_jobs skips a job locked between its
  -- two statements), so ending it as "paused" would leave its recipient pending with no job.
  -- FOR NO KEY UPDATE, the lock the update to sending takes, so that two claims never both hold
  -- a weaker lock and then both wait to upgrade it.
  if not exists (select 1 from public.campaigns
                  where campaign_id = p_campaign_id and status = 'sending') then
    perform 1 from public.campaigns where campaign_id = p_campaign_id for no key update;
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
         last_attempt_at = now(), last_error = null,
         claimed_by = nullif(current_setting('application_name', true), '')
   where campaign_id = p_campaign_id and customer_id = p_customer_id;

  if v_campaign_status = 'queued' then
    update public.campaigns set status = 'sending'
     where campaign_id = p_campaign_id and status = 'queued';
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

--
-- Name: FUNCTION claim_recipient(p_campaign_id uuid, p_customer_id uuid, p_lease interval); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.claim_recipient(p_campaign_id uuid, p_customer_id uuid, p_lease interval) IS 'Claims a pending recipient for sending under its row lock (commit before calling SES), naming the claiming process in claimed_by. A claim older than p_lease with no outcome becomes in_doubt, never a second send. Waits for a status change of its campaign in progress.';

--
-- Name: claim_recipients(uuid[], uuid[], interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.claim_recipients(p_campaign_ids uuid[], p_customer_ids uuid[], p_lease interval) RETURNS TABLE(ord integer, outcome text, email text, template_data jsonb, provider text, provider_template_name text, template_id uuid, attempt_count integer)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
#variable_conflict use_column
declare
  v_row record;
  v_claim public.send_claim;
  v_claimed integer[] := '{}';
  v_claimer text := nullif(current_setting('application_name', true), '');
begin
  -- Campaign rows first, in campaign_id order, and only those not sending (see claim_recipient):
  -- a queued one becomes sending, one that is changing status is waited for.
  perform 1 from public.campaigns c
    where c.campaign_id = any(p_campaign_ids) and c.status <> 'sending'
    order by c.campaign_id
      for no key update;
  update public.campaigns c set status = 'sending'
   where c.campaign_id = any(p_campaign_ids) and c.status = 'queued';

  for v_row in
    with keys as (
      select k.campaign_id, k.customer_id, k.ord::integer as ord
        from unnest(p_campaign_ids, p_customer_ids) with ordinality as k(campaign_id, customer_id, ord)
    ), claimed as (
      update public.campaign_recipients r
         set recipient_status = 'sending', attempt_count = r.attempt_count + 1,
             last_attempt_at = now(), last_error = null, updated_at = now(),
             claimed_by = v_claimer
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
    return next;
  end loop;

  for v_row in
    select k.campaign_id, k.customer_id, k.ord::integer as ord
      from unnest(p_campaign_ids, p_customer_ids) with ordinality as k(campaign_id, customer_id, ord)
     where not (k.ord::integer = any(v_claimed))
     order by k.ord
  loop
    v_claim := public.claim_recipient(v_row.campaign_id, v_row.customer_id, p_lease);
    ord := v_row.ord;
    outcome := v_claim.outcome;
    email := v_claim.email;
    template_data := v_claim.template_data;
    provider := v_claim.provider;
    provider_template_name := v_claim.provider_template_name;
    template_id := v_claim.template_id;
    attempt_count := v_claim.attempt_count;
    return next;
  end loop;
end;
$$;

--
-- Name: FUNCTION claim_recipients(p_campaign_ids uuid[], p_customer_ids uuid[], p_lease interval); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.claim_recipients(p_campaign_ids uuid[], p_customer_ids uuid[], p_lease interval) IS 'claim_recipient for many recipients in one transaction (committed before any of them is sent): one row per array position (ord, 1-based), attempt_count naming the claim for its outcome. Callers pass them sorted by (campaign_id, customer_id).';

--
-- Name: console_user_add(text, text, boolean, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.console_user_add(p_username text, p_role text, p_can_queue boolean, p_password_hash text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
begin
  insert into public.console_users (username, role, can_queue, password_hash)
  values (p_username, p_role, coalesce(p_can_queue, false), p_password_hash);
  perform public.record_operator_action('console_user_add', null, null, null, null,
    jsonb_build_object('username', p_username, 'role', p_role,
                       'can_queue', coalesce(p_can_queue, false),
                       'password', p_password_hash is not null));
end;
$$;

--
-- Name: FUNCTION console_user_add(p_username text, p_role text, p_can_queue boolean, p_password_hash text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.console_user_add(p_username text, p_role text, p_can_queue boolean, p_password_hash text) IS 'Adds a console user (mailer console user add); a taken username is refused (unique_violation). Recorded in operator_actions (never the hash).';

--
-- Name: console_user_remove(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.console_user_remove(p_username text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
begin
  delete from public.console_users where username = p_username;
  if not found then
    return false;
  end if;
  perform public.record_operator_action('console_user_remove', null, null, null, null,
    jsonb_build_object('username', p_username));
  return true;
end;
$$;

--
-- Name: FUNCTION console_user_remove(p_username text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.console_user_remove(p_username text) IS 'Removes a console user and ends their sessions; false when there was none. Recorded.';

--
-- Name: customer_import_problems(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.customer_import_problems() RETURNS TABLE(line integer, problem text, value text)
    LANGUAGE plpgsql STABLE
    SET work_mem TO '64MB'
    AS $$
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

--
-- Name: FUNCTION customer_import_problems(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.customer_import_problems() IS 'Rejected lines of the staged import with the reason, in file order (read it with a cursor: it can be long).';

--
-- Name: customer_import_summary(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.customer_import_summary(OUT rows_read bigint, OUT valid bigint, OUT invalid bigint, OUT duplicates bigint) RETURNS record
    LANGUAGE plpgsql STABLE
    SET work_mem TO '64MB'
    AS $$
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

--
-- Name: FUNCTION customer_import_summary(OUT rows_read bigint, OUT valid bigint, OUT invalid bigint, OUT duplicates bigint); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.customer_import_summary(OUT rows_read bigint, OUT valid bigint, OUT invalid bigint, OUT duplicates bigint) IS 'Counts of the staged import: rows read, valid (to import), invalid, and duplicates of an earlier line.';

--
-- Name: customer_template_data(uuid, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.customer_template_data(p_customer_id uuid, p_unsubscribe_url text) RETURNS jsonb
    LANGUAGE sql STABLE
    AS $$
  select jsonb_build_object('name', c.name, 'company', c.company, 'country', c.country,
                            'email', c.email, 'unsubscribe_url', p_unsubscribe_url)
    from public.customers c where c.customer_id = p_customer_id;
$$;

--
-- Name: FUNCTION customer_template_data(p_customer_id uuid, p_unsubscribe_url text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.customer_template_data(p_customer_id uuid, p_unsubscribe_url text) IS 'The template_data generate_campaign_chunk gives this customer (same keys), with the given unsubscribe URL; for previews and test sends.';

--
-- Name: deactivate_template(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.deactivate_template(p_template_id uuid) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION deactivate_template(p_template_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.deactivate_template(p_template_id uuid) IS 'Takes a template version out of use for new campaigns.';

--
-- Name: delete_draft_campaign(uuid, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.delete_draft_campaign(p_campaign_id uuid, p_note text DEFAULT NULL::text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
declare
  v_campaign public.campaigns;
  v_recipients integer;
  v_tokens integer;
begin
  select * into v_campaign from public.campaigns where campaign_id = p_campaign_id for update;
  if not found then
    raise exception 'delete_draft_campaign: no campaign %', p_campaign_id
      using errcode = 'no_data_found';
  end if;
  if v_campaign.status <> 'draft' then
    raise exception 'delete_draft_campaign: campaign % is %; only a draft can be deleted',
      p_campaign_id, v_campaign.status
      using errcode = 'check_violation',
            hint = case when v_campaign.status in ('queued', 'sending')
                        then 'it has started sending; pause it with pause_campaign instead'
                        else 'a campaign that was queued keeps its recipients as the record of what went out'
                   end;
  end if;
  if v_campaign.generating then
    raise exception 'delete_draft_campaign: campaign % is still being generated; delete it once '
      'generation is over', p_campaign_id using errcode = 'check_violation';
  end if;
  select count(*) into v_recipients from public.campaign_recipients where campaign_id = p_campaign_id;
  select count(*) into v_tokens from public.unsubscribe_tokens where campaign_id = p_campaign_id;
  perform graphile_worker.remove_job(public.scheduled_campaign_job_key(p_campaign_id));
  perform public.record_operator_action('delete_campaign', null, p_campaign_id, null, p_note,
    jsonb_build_object('campaign_id', p_campaign_id, 'campaign_name', v_campaign.campaign_name,
                       'week_of_month', v_campaign.week_of_month,
                       'generated_date', v_campaign.generated_date,
                       'scheduled_at', v_campaign.scheduled_at,
                       'recipients', v_recipients, 'tokens', v_tokens));
  delete from public.campaigns where campaign_id = p_campaign_id;
  return v_recipients;
end;
$$;

--
-- Name: FUNCTION delete_draft_campaign(p_campaign_id uuid, p_note text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.delete_draft_campaign(p_campaign_id uuid, p_note text) IS 'Deletes a draft campaign (not one still generating) with its recipients, unsubscribe tokens and scheduled job; returns how many recipients went. Refuses any other status. Recorded in operator_actions (the campaign id in details: the row''s campaign_id becomes null).';

--
-- Name: delete_exported_events(uuid[], text, text, bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.delete_exported_events(p_event_ids uuid[], p_location text, p_sha256 text, p_bytes bigint) RETURNS integer
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION delete_exported_events(p_event_ids uuid[], p_location text, p_sha256 text, p_bytes bigint); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.delete_exported_events(p_event_ids uuid[], p_location text, p_sha256 text, p_bytes bigint) IS 'Deletes exactly the given (already exported and verified) events and records the export file, in one transaction; returns how many were deleted.';

--
-- Name: email_problem(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.email_problem(p_email text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
    AS $_$
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
$_$;

--
-- Name: FUNCTION email_problem(p_email text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.email_problem(p_email text) IS 'Why an address (normalised first) cannot be mailed, or null when it looks sendable: one readable reason.';

--
-- Name: enqueue_campaign_sends(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.enqueue_campaign_sends(p_campaign_id uuid) RETURNS integer
    LANGUAGE plpgsql
    AS $$
declare
  v_count integer;
begin
  select count(*)::integer into v_count from graphile_worker.add_jobs(
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
  if v_count >= 10000 and exists (
       select 1 from pg_catalog.pg_class c
        where c.oid = 'graphile_worker._private_jobs'::regclass
          and (pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
               or pg_catalog.pg_has_role(current_user,
                    (select d.datdba from pg_catalog.pg_database d
                      where d.datname = pg_catalog.current_database()), 'USAGE'))) then
    analyze graphile_worker._private_jobs;
  end if;
  return v_count;
end;
$$;

--
-- Name: FUNCTION enqueue_campaign_sends(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.enqueue_campaign_sends(p_campaign_id uuid) IS 'Adds one send_recipient job per pending recipient of the campaign, in customer_id order (bench/enqueue.ts compares it with the feeder); returns how many. From 10,000 jobs on it also analyzes the jobs table (when the caller owns it), so graphile-worker''s job fetch is planned for the rows that are there.';

--
-- Name: enqueue_generate_campaign(integer, date, boolean, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.enqueue_generate_campaign(p_week integer, p_date date DEFAULT NULL::date, p_send boolean DEFAULT true, p_force boolean DEFAULT false) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
declare
  v_date date := coalesce(p_date, (now() at time zone 'utc')::date);
  v_job_id bigint;
begin
  if p_week is null or p_week not between 1 and 4 then
    raise exception 'enqueue_generate_campaign: week must be 1-4, got %', p_week
      using errcode = 'invalid_parameter_value';
  end if;
  -- Refused now, in the operator's session, rather than as a failed job later (the job checks
  -- again, under the generation lock).
  if not exists (select 1 from public.campaigns where week_of_month = p_week and generated_date = v_date) then
    perform public.check_campaign_identity('enqueue_generate_campaign', p_week, v_date, p_force);
  end if;
  select id into v_job_id from graphile_worker.add_job('generate_campaign',
    json_build_object('week_of_month', p_week, 'generated_date', v_date, 'send', coalesce(p_send, true),
                      'force', coalesce(p_force, false)),
    job_key => format('generate_campaign:%s:%s', p_week, v_date));
  perform public.record_operator_action('enqueue_generate_campaign', null, null, null, null,
    jsonb_build_object('week_of_month', p_week, 'generated_date', v_date, 'send', coalesce(p_send, true),
                       'force', coalesce(p_force, false), 'job_id', v_job_id));
  return v_job_id;
end;
$$;

--
-- Name: FUNCTION enqueue_generate_campaign(p_week integer, p_date date, p_send boolean, p_force boolean); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.enqueue_generate_campaign(p_week integer, p_date date, p_send boolean, p_force boolean) IS 'Adds a generate_campaign job (week 1-4, date default today UTC, send default true, force default false); returns its job id. Refuses at once a date outside the week or a second campaign for the (month, week), unless p_force. Generation is idempotent per week and date.';

--
-- Name: ensure_campaign_feeder(uuid, interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ensure_campaign_feeder(p_campaign_id uuid, p_delay interval DEFAULT '00:00:00'::interval) RETURNS void
    LANGUAGE plpgsql
    AS $$
declare
  v_job_id bigint;
begin
  -- One waiting feeder per campaign, remembered by job id; callers hold the campaign's feed lock,
  -- so two of them never both find none. No job key: a job adding its own successor under its
  -- key would have that key taken and its attempts spent by graphile-worker (add_jobs does that
  -- to a locked job), and stay behind as a failed job when its worker is killed before it ends.
  if exists (select 1 from public.campaign_feeds f
               join graphile_worker.jobs j on j.id = f.feeder_job_id
              where f.campaign_id = p_campaign_id and j.locked_at is null
                and j.attempts < j.max_attempts) then
    return;
  end if;
  select id into v_job_id from graphile_worker.add_job('feed_campaign',
    json_build_object('campaign_id', p_campaign_id), run_at => now() + p_delay);
  insert into public.campaign_feeds (campaign_id, feeder_job_id) values (p_campaign_id, v_job_id)
  on conflict (campaign_id) do update set feeder_job_id = excluded.feeder_job_id;
end;
$$;

--
-- Name: FUNCTION ensure_campaign_feeder(p_campaign_id uuid, p_delay interval); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ensure_campaign_feeder(p_campaign_id uuid, p_delay interval) IS 'Adds a feed_campaign job for the campaign, to run after p_delay, unless its last one is still waiting. The caller holds feed_lock_key(campaign).';

--
-- Name: ensure_campaign_feeders(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ensure_campaign_feeders() RETURNS integer
    LANGUAGE plpgsql
    AS $$
declare
  v_count integer := 0;
  v_campaign record;
begin
  -- A feeder lost (deleted by hand, failed for good): queued and sending campaigns with
  -- recipients left to feed get their feed_campaign job back.
  for v_campaign in
    select c.campaign_id from public.campaigns c
      left join public.campaign_feeds f on f.campaign_id = c.campaign_id
     where c.status in ('queued', 'sending')
       and not exists (select 1 from graphile_worker.jobs j
                        where j.id = f.feeder_job_id and j.attempts < j.max_attempts)
       and (c.generating or exists (
             select 1 from public.campaign_recipients r
              where r.campaign_id = c.campaign_id and r.recipient_status = 'pending'
                and r.customer_id > coalesce(f.fed_through, '00000000-0000-0000-0000-000000000000')))
     order by c.campaign_id
       -- The campaign row before the feed lock (the lock order; see feed_campaign_sends).
       for key share of c
  loop
    -- A feeder or status change at work on it leaves a feeder behind itself.
    if pg_try_advisory_xact_lock(public.feed_lock_key(v_campaign.campaign_id)) then
      perform public.ensure_campaign_feeder(v_campaign.campaign_id);
      v_count := v_count + 1;
    end if;
  end loop;
  -- A generation whose job is gone: its generate_campaign job again (it carries on from the
  -- last recipient written).
  for v_campaign in
    select c.campaign_id, c.week_of_month, c.generated_date from public.campaigns c
     where c.generating
       and not exists (select 1 from graphile_worker.jobs j
                        where j.key = format('generate_campaign:%s:%s', c.week_of_month, c.generated_date))
       -- Not while a generator writes a chunk (a job without that key: the weekly cron's, a CLI).
       and pg_try_advisory_xact_lock(public.generation_lock_key(c.campaign_id))
     order by c.campaign_id
  loop
    perform graphile_worker.add_job('generate_campaign',
      json_build_object('week_of_month', v_campaign.week_of_month,
                        'generated_date', v_campaign.generated_date, 'send', false, 'force', true),
      job_key => format('generate_campaign:%s:%s', v_campaign.week_of_month, v_campaign.generated_date));
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;

--
-- Name: FUNCTION ensure_campaign_feeders(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ensure_campaign_feeders() IS 'Called by the sweep: gives back its feed_campaign job to a queued or sending campaign with recipients left to feed, and its generate_campaign job to a campaign whose generation stopped half-way. Returns how many jobs it added.';

--
-- Name: expire_unsubscribe_tokens(interval, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.expire_unsubscribe_tokens(p_grace interval, p_limit integer) RETURNS integer
    LANGUAGE sql
    AS $$
  with doomed as (
    select t.token_id from public.unsubscribe_tokens t
     where t.expires_at < now() - p_grace
       and t.expires_at >= now() - p_grace - interval '7 days'
       -- By the customer's id: the recipient's primary key, not a scan of the whole campaign.
       and not exists (
         select 1 from public.customers c
           join public.campaign_recipients r
             on r.campaign_id = t.campaign_id and r.customer_id = c.customer_id
          where c.email = t.email and r.recipient_status <> 'suppressed')
     limit p_limit
       for update of t skip locked
  ), deleted as (
    delete from public.unsubscribe_tokens t using doomed d where t.token_id = d.token_id
    returning 1
  )
  select count(*)::integer from deleted;
$$;

--
-- Name: FUNCTION expire_unsubscribe_tokens(p_grace interval, p_limit integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.expire_unsubscribe_tokens(p_grace interval, p_limit integer) IS 'Deletes up to p_limit unsubscribe tokens that expired between p_grace and p_grace + 7 days ago and that no email carried (recipient suppressed at generation, or gone); returns how many. Tokens of mail that went out are kept, so their one-click POST keeps working. Call until it returns less than p_limit.';

--
-- Name: failed_jobs(text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.failed_jobs(p_task text DEFAULT NULL::text, p_limit integer DEFAULT 50) RETURNS TABLE(id bigint, task_identifier text, attempts smallint, max_attempts smallint, last_error text, run_at timestamp with time zone, created_at timestamp with time zone, updated_at timestamp with time zone)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
  select j.id, j.task_identifier, j.attempts, j.max_attempts, j.last_error, j.run_at, j.created_at,
         j.updated_at
    from graphile_worker.jobs j
   where j.attempts >= j.max_attempts and j.locked_at is null
     and (p_task is null or j.task_identifier = p_task)
   order by j.updated_at desc, j.id desc
   limit p_limit;
$$;

--
-- Name: FUNCTION failed_jobs(p_task text, p_limit integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.failed_jobs(p_task text, p_limit integer) IS 'Jobs that will not run again (attempts >= max_attempts), newest first, with their last error.';

--
-- Name: feed_campaign_sends(uuid, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.feed_campaign_sends(p_campaign_id uuid, p_window integer DEFAULT NULL::integer, p_batch integer DEFAULT NULL::integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$
declare
  v_status text;
  v_generating boolean;
  v_fed uuid;
  v_written uuid;
  v_first boolean;
  v_waiting integer;
  v_ids uuid[];
  v_more boolean;
  v_window integer := least(public.mailer_setting('feed_window', 20000), p_window);
  v_batch integer := coalesce(p_batch, public.mailer_setting('feed_batch', 10000));
begin
  -- The lock order: the campaign row first (key share: what the cursor's foreign key takes
  -- anyway; it waits only for set_campaign_status's FOR UPDATE), then the feed lock. Taken the
  -- other way round, a pause holding the row and waiting for the feed lock would deadlock.
  select c.status, c.generating into v_status, v_generating
    from public.campaigns c where c.campaign_id = p_campaign_id for key share;
  if not found or v_status not in ('queued', 'sending') then
    return null;
  end if;
  if not pg_try_advisory_xact_lock(public.feed_lock_key(p_campaign_id)) then
    -- Another feeder, a status change or the sweep is at work, and leaves a feeder behind when
    -- one is needed.
    return 0;
  end if;
  -- Again under the lock: a status change that held it has committed by now.
  select c.status, c.generating into v_status, v_generating
    from public.campaigns c where c.campaign_id = p_campaign_id;
  if v_status not in ('queued', 'sending') then
    return null;
  end if;
  select f.fed_through into v_fed from public.campaign_feeds f where f.campaign_id = p_campaign_id;
  v_first := v_fed is null;

  -- How far the recipients are written without a gap: up to the last one below the end of the
  -- lowest lane still generating (its later recipients, and the lanes above it, come after the
  -- cursor); every one when no lane below the last is generating. One statement, one snapshot:
  -- a lane that ends meanwhile is seen with all its recipients.
  select case when u.upper_bound is null then
                (select r.customer_id from public.campaign_recipients r
                  where r.campaign_id = p_campaign_id
                  order by r.campaign_id desc, r.customer_id desc limit 1)
              else
                (select r.customer_id from public.campaign_recipients r
                  where r.campaign_id = p_campaign_id and r.customer_id < u.upper_bound
                  order by r.campaign_id desc, r.customer_id desc limit 1)
         end
    into v_written
    from (select (select l.upper_bound from public.campaign_generation_lanes l
                   where l.campaign_id = p_campaign_id and not l.done
                   order by l.lane limit 1) as upper_bound) u;

  -- Jobs still waiting (or running): the pending recipients already fed. At most v_window read,
  -- from campaign_recipients_pending_idx.
  select count(*)::integer into v_waiting from (
    select 1 from public.campaign_recipients r
     where r.campaign_id = p_campaign_id and r.recipient_status = 'pending'
       and r.customer_id <= v_fed
     limit v_window) w;

  select array_agg(n.customer_id order by n.customer_id) into v_ids from (
    select r.customer_id from public.campaign_recipients r
     where r.campaign_id = p_campaign_id and r.recipient_status = 'pending'
       and r.customer_id > coalesce(v_fed, '00000000-0000-0000-0000-000000000000')
       and r.customer_id <= v_written
     order by r.campaign_id, r.customer_id
     limit least(v_batch, greatest(v_window - v_waiting, 0))) n;

  if cardinality(v_ids) > 0 then
    perform graphile_worker.add_jobs(array(
      select row('send_recipient',
                 json_build_object('campaign_id', p_campaign_id, 'customer_id', i.id),
                 null, null, null,
                 'send_recipient:' || p_campaign_id || ':' || i.id,
                 null, null)::graphile_worker.job_spec
        from unnest(v_ids) with ordinality as i(id, n)
       order by i.n), true);
    v_fed := v_ids[cardinality(v_ids)];
    insert into public.campaign_feeds (campaign_id, fed_through) values (p_campaign_id, v_fed)
    on conflict (campaign_id) do update set fed_through = excluded.fed_through, updated_at = now();
    -- The first feed of a campaign: graphile-worker's jobs table may have the statistics of an
    -- empty table, and its job fetch would be planned as a scan and sort (see
    -- enqueue_campaign_sends).
    if v_first and cardinality(v_ids) >= 1000 and exists (
         select 1 from pg_catalog.pg_class c
          where c.oid = 'graphile_worker._private_jobs'::regclass
            and (pg_catalog.pg_has_role(current_user, c.relowner, 'USAGE')
                 or pg_catalog.pg_has_role(current_user,
                      (select d.datdba from pg_catalog.pg_database d
                        where d.datname = pg_catalog.current_database()), 'USAGE'))) then
      analyze graphile_worker._private_jobs;
    end if;
  end if;

  -- More to feed: recipients still being generated, or pending ones past the cursor. Then the
  -- feeder comes back: at once when it stopped at its batch size below the window, else in a
  -- second (the window holds seconds of sends at any rate mailer reaches).
  v_more := v_generating or exists (
    select 1 from public.campaign_recipients r
     where r.campaign_id = p_campaign_id and r.recipient_status = 'pending'
       and r.customer_id > coalesce(v_fed, '00000000-0000-0000-0000-000000000000'));
  if v_more then
    perform public.ensure_campaign_feeder(p_campaign_id,
      case when coalesce(cardinality(v_ids), 0) = v_batch
                and v_waiting + v_batch < v_window then interval '0 seconds'
           else interval '1 second' end);
  end if;
  return coalesce(cardinality(v_ids), 0);
end;
$$;

--
-- Name: FUNCTION feed_campaign_sends(p_campaign_id uuid, p_window integer, p_batch integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.feed_campaign_sends(p_campaign_id uuid, p_window integer, p_batch integer) IS 'The feeder: tops a queued or sending campaign up to p_window (at most, and by default, mailer.feed_window, else 20,000) waiting send jobs (at most p_batch, default mailer.feed_batch, else 10,000, per call, in customer_id order, job key per recipient) and reschedules its feed_campaign job while anything is left to feed. Returns the jobs added; null when the campaign is not sendable (the feeder stops).';

--
-- Name: feed_lock_key(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.feed_lock_key(p_campaign_id uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE
    AS $$ select (7302::bigint << 32) | (hashtext(p_campaign_id::text)::bigint & 4294967295) $$;

--
-- Name: FUNCTION feed_lock_key(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.feed_lock_key(p_campaign_id uuid) IS 'The advisory lock key that serialises feeding a campaign with its status changes.';

--
-- Name: finish_campaign_if_complete(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.finish_campaign_if_complete(p_campaign_id uuid) RETURNS boolean
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION finish_campaign_if_complete(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.finish_campaign_if_complete(p_campaign_id uuid) IS 'Marks a queued/sending campaign done when its generation is finished and no recipient is pending or sending; waits for outcomes being recorded (record_send_outcomes) so that the last of them is never missed. While a recipient is pending or sending it answers null at once: that recipient''s own outcome calls it again.';

--
-- Name: generate_campaign(integer, date, boolean, interval, text, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.generate_campaign(p_week_of_month integer, p_generated_date date, p_send boolean, p_token_ttl interval, p_public_url text, p_force boolean DEFAULT false) RETURNS uuid
    LANGUAGE plpgsql
    AS $$
declare
  v_campaign_id uuid;
begin
  v_campaign_id := public.begin_campaign_generation(p_week_of_month, p_generated_date, p_send,
    p_token_ttl, p_public_url, p_force);
  -- The whole campaign in this one transaction (psql, tests), lane after lane; the
  -- generate_campaign task commits chunk by chunk, its lanes at the same time instead
  -- (src/queries/campaigns.ts).
  loop
    exit when public.generate_campaign_chunk(v_campaign_id, p_token_ttl, p_public_url) = 0
          and not exists (select 1 from public.campaign_generation_lanes l
                            join public.campaigns c on c.campaign_id = l.campaign_id
                           where l.campaign_id = v_campaign_id and not l.done and c.generating);
  end loop;
  return v_campaign_id;
end;
$$;

--
-- Name: FUNCTION generate_campaign(p_week_of_month integer, p_generated_date date, p_send boolean, p_token_ttl interval, p_public_url text, p_force boolean); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.generate_campaign(p_week_of_month integer, p_generated_date date, p_send boolean, p_token_ttl interval, p_public_url text, p_force boolean) IS 'Creates the week''s campaign with one recipient and one unsubscribe token per active customer; suppressed addresses are recorded as suppressed. Queues it when p_send. Idempotent per week and date. Unless p_force: the date must be in the week of the month (week_of_month), and a (month, week) with a campaign on another date gets no second one.';

--
-- Name: generate_campaign_chunk(uuid, interval, text, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.generate_campaign_chunk(p_campaign_id uuid, p_token_ttl interval, p_public_url text, p_limit integer DEFAULT NULL::integer, p_lane integer DEFAULT NULL::integer) RETURNS integer
    LANGUAGE plpgsql
    AS $_$
declare
  v_lane public.campaign_generation_lanes;
  v_from uuid;
  v_count integer;
  v_last uuid;
  v_limit integer := coalesce(p_limit, public.mailer_setting('generation_chunk', 50000));
  -- 'tttttttt-tttt-7': the chunk's Unix time in milliseconds (48 bits) and the version digit.
  v_token_prefix text := regexp_replace(
    lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0'),
    '^(.{8})(.{4})$', '\1-\2-7');
begin
  -- Shared: the lanes of a campaign write at the same time; the sweep's try of the exclusive
  -- lock tells it a generator is at work.
  perform pg_advisory_xact_lock_shared(public.generation_lock_key(p_campaign_id));
  if not coalesce((select c.generating from public.campaigns c
                    where c.campaign_id = p_campaign_id), false) then
    return 0;
  end if;
  -- The lane's row lock keeps its chunks one at a time. Without p_lane: the first one not done.
  select l.* into v_lane from public.campaign_generation_lanes l
   where l.campaign_id = p_campaign_id and not l.done
     and (p_lane is null or l.lane = p_lane)
   order by l.lane limit 1
     for update;
  if not found then
    return 0;
  end if;
  v_from := coalesce(v_lane.written_through, v_lane.lower_bound);

  -- Token ids drawn here, so recipients need no join back to the tokens by email. Built for the
  -- lane's bounds: only the bounds it has, as index conditions on customers' primary key.
  execute format($sql$
    with chunk as materialized (
      select c.customer_id, c.email, c.name, c.company, c.country,
             -- The prefix, then a random UUID from its version digit on: 74 random bits.
             ($7 || substr(gen_random_uuid()::text, 16))::uuid as token_id
        from public.customers c
       where c.is_active %s %s
       order by c.customer_id
       limit $3
    ), tokens as (
      insert into public.unsubscribe_tokens (token_id, email, campaign_id, expires_at)
      select k.token_id, k.email, $4, now() + $5 from chunk k
    ), recipients as (
      insert into public.campaign_recipients (campaign_id, customer_id, email, recipient_status,
                                              template_data)
      select $4, k.customer_id, k.email,
             case when s.email is null then 'pending' else 'suppressed' end,
             jsonb_build_object(
               'name', k.name, 'company', k.company, 'country', k.country, 'email', k.email,
               'unsubscribe_url', rtrim($6, '/') || '/unsubscribe/' || k.token_id)
        from chunk k
        left join public.suppression_list s on s.email = k.email
       -- In primary key order: the indexes fill left to right.
       order by k.customer_id
      returning 1
    )
    select (select count(*)::int from recipients),
           (select k.customer_id from chunk k order by k.customer_id desc limit 1)
    $sql$,
    case when v_from is null then ''
         when v_lane.written_through is null then 'and c.customer_id >= $1'
         else 'and c.customer_id > $1' end,
    case when v_lane.upper_bound is null then '' else 'and c.customer_id < $2' end)
    into v_count, v_last
    using v_from, v_lane.upper_bound, v_limit, p_campaign_id, p_token_ttl, p_public_url,
          v_token_prefix;

  update public.campaign_generation_lanes l
     set done = v_count < v_limit,
         written_through = coalesce(v_last, l.written_through)
   where l.campaign_id = v_lane.campaign_id and l.lane = v_lane.lane;

  if v_count < v_limit then
    -- The last lane to finish ends the generation. The campaign row's lock orders lanes that
    -- finish together: the second one sees the first one's lane done.
    perform 1 from public.campaigns c where c.campaign_id = p_campaign_id for no key update;
    if not exists (select 1 from public.campaign_generation_lanes l
                    where l.campaign_id = p_campaign_id and not l.done) then
      update public.campaigns set generating = false where campaign_id = p_campaign_id;
      -- Every recipient may have been sent (or suppressed) before generation ended.
      perform public.finish_campaign_if_complete(p_campaign_id);
    end if;
  end if;
  return v_count;
end;
$_$;

--
-- Name: FUNCTION generate_campaign_chunk(p_campaign_id uuid, p_token_ttl interval, p_public_url text, p_limit integer, p_lane integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.generate_campaign_chunk(p_campaign_id uuid, p_token_ttl interval, p_public_url text, p_limit integer, p_lane integer) IS 'Adds the next p_limit (default mailer.generation_chunk, else 50,000) active customers of lane p_lane (default: the first lane not done), in customer_id order, to a generating campaign, each with its unsubscribe token. The chunk that finds fewer ends its lane, and the last lane to end ends the generation (generating = false) and finishes the campaign if nothing is left to send. Returns the recipients added; 0 for a lane done or a campaign not generating.';

--
-- Name: generation_lock_key(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.generation_lock_key(p_campaign_id uuid) RETURNS bigint
    LANGUAGE sql IMMUTABLE
    AS $$ select (7303::bigint << 32) | (hashtext(p_campaign_id::text)::bigint & 4294967295) $$;

--
-- Name: FUNCTION generation_lock_key(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.generation_lock_key(p_campaign_id uuid) IS 'The advisory lock key that serialises the generation chunks of a campaign.';

--
-- Name: in_doubt_evidence(uuid, uuid, text, timestamp with time zone, interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.in_doubt_evidence(p_campaign_id uuid, p_customer_id uuid, p_email text, p_last_attempt_at timestamp with time zone, p_lease interval) RETURNS TABLE(event_id uuid, event_type text, ses_message_id text, new_status text, relation text, sent_at timestamp with time zone)
    LANGUAGE sql STABLE
    AS $$
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

--
-- Name: FUNCTION in_doubt_evidence(p_campaign_id uuid, p_customer_id uuid, p_email text, p_last_attempt_at timestamp with time zone, p_lease interval); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.in_doubt_evidence(p_campaign_id uuid, p_customer_id uuid, p_email text, p_last_attempt_at timestamp with time zone, p_lease interval) IS 'The SES events that may settle one in-doubt recipient (campaign, customer, address, last attempt, claim lease): relation tags, message id or address and time (its own), or ambiguous (untagged, and another recipient could own it); new_status is what the event makes it.';

--
-- Name: in_doubt_recipients(interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.in_doubt_recipients(p_older_than interval DEFAULT '00:00:00'::interval) RETURNS TABLE(campaign_id uuid, campaign_name text, customer_id uuid, email text, attempt_count integer, last_attempt_at timestamp with time zone, last_error text, events bigint)
    LANGUAGE sql STABLE
    AS $$
  select r.campaign_id, c.campaign_name, r.customer_id, r.email, r.attempt_count, r.last_attempt_at,
         r.last_error,
         (select count(*) from public.email_events_op e
           where e.campaign_id = r.campaign_id and e.customer_id = r.customer_id)
    from public.campaign_recipients r
    join public.campaigns c on c.campaign_id = r.campaign_id
   where r.recipient_status = 'in_doubt' and r.last_attempt_at <= now() - p_older_than
   order by r.last_attempt_at, r.campaign_id, r.customer_id;
$$;

--
-- Name: FUNCTION in_doubt_recipients(p_older_than interval); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.in_doubt_recipients(p_older_than interval) IS 'Recipients in_doubt whose last attempt is older than p_older_than, oldest first, with how many SES events name them.';

--
-- Name: job_queue_summary(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.job_queue_summary() RETURNS TABLE(task_identifier text, ready bigint, scheduled bigint, running bigint, retrying bigint, failed bigint, oldest_ready_at timestamp with time zone)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
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

--
-- Name: FUNCTION job_queue_summary(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.job_queue_summary() IS 'Jobs per task: ready to run, scheduled later, running, retrying (failed before, will run again), failed for good (attempts >= max_attempts), and when the oldest ready job became due.';

--
-- Name: mailer_setting(text, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.mailer_setting(p_name text, p_default integer) RETURNS integer
    LANGUAGE sql STABLE
    AS $$ select coalesce(nullif(current_setting('mailer.' || p_name, true), '')::integer, p_default) $$;

--
-- Name: FUNCTION mailer_setting(p_name text, p_default integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.mailer_setting(p_name text, p_default integer) IS 'The integer setting mailer.<p_name> (ALTER DATABASE ... SET), or p_default when unset.';

--
-- Name: normalize_email(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.normalize_email(p_email text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select lower(btrim(p_email, e' \t\r\n'));
$$;

--
-- Name: FUNCTION normalize_email(p_email text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.normalize_email(p_email text) IS 'An address as it is stored: surrounding whitespace removed, lowercase.';

--
-- Name: opt_out_record(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.opt_out_record(p_email text) RETURNS TABLE(reason text, recorded_at timestamp with time zone, recorded_in text)
    LANGUAGE sql STABLE
    AS $$
  select x.reason, x.recorded_at, x.recorded_in
    from (
      select case e.event_type when 'complaint' then 'complaint' else 'unsubscribe' end,
             e.event_time, format('email_events_op (%s event)', e.event_type)
        from public.email_events_op e
       where e.email = public.normalize_email(p_email)
         and (e.event_type in ('unsubscribe', 'complaint')
              or (e.event_type = 'subscription'
                  and e.payload #>> '{subscription,newTopicPreferences,unsubscribeAll}' = 'true'))
      union all
      select a.details ->> 'reason', a.created_at,
             format('operator_actions #%s (%s)', a.action_id, a.action)
        from public.operator_actions a
       where a.email = public.normalize_email(p_email) and a.action in ('suppress', 'unsuppress')
         and a.details ->> 'reason' in ('unsubscribe', 'complaint')
    ) x(reason, recorded_at, recorded_in)
   order by x.recorded_at desc;
$$;

--
-- Name: FUNCTION opt_out_record(p_email text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.opt_out_record(p_email text) IS 'Every unsubscribe or complaint recorded for an address, newest first: its own acts in email_events_op (within retention) and operator suppressions and lifts in operator_actions (kept for good). unsuppress_email needs force when there is any.';

--
-- Name: parse_boolean(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.parse_boolean(p_value text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select case lower(btrim(p_value))
    when 'true' then true when 't' then true when 'yes' then true when 'y' then true when '1' then true
    when 'false' then false when 'f' then false when 'no' then false when 'n' then false when '0' then false
  end;
$$;

--
-- Name: FUNCTION parse_boolean(p_value text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.parse_boolean(p_value text) IS 'true/t/yes/y/1 and false/f/no/n/0 (any case); null for anything else.';

--
-- Name: pause_campaign(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.pause_campaign(p_campaign_id uuid) RETURNS text
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
  select public.set_campaign_status(p_campaign_id, 'pause_campaign', array['queued', 'sending'], 'paused');
$$;

--
-- Name: FUNCTION pause_campaign(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.pause_campaign(p_campaign_id uuid) IS 'Stops new sends of a queued or sending campaign (queued jobs find it paused and do nothing; sends already claimed finish). Returns paused. No-op when already paused.';

--
-- Name: plan_campaign_generation(uuid, integer, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.plan_campaign_generation(p_campaign_id uuid, p_lanes integer DEFAULT NULL::integer, p_chunk integer DEFAULT NULL::integer) RETURNS integer
    LANGUAGE plpgsql
    AS $$
declare
  v_lanes integer := greatest(1, coalesce(p_lanes, public.mailer_setting('generation_lanes', 2)));
  v_chunk integer := greatest(1, coalesce(p_chunk, public.mailer_setting('generation_chunk', 50000)));
  v_customers bigint;
  v_bounds uuid[] := '{}';
  v_bound uuid;
begin
  if exists (select 1 from public.campaign_generation_lanes l where l.campaign_id = p_campaign_id) then
    return (select count(*)::integer from public.campaign_generation_lanes l
             where l.campaign_id = p_campaign_id);
  end if;
  -- Ranges of equal size by customer_id, active or not (the primary key alone, an index-only
  -- scan: 0.1 s for 1,000,000), and no more lanes than chunks of work.
  select count(*) into v_customers from public.customers;
  v_lanes := least(v_lanes, greatest(1, ceil(v_customers::numeric / v_chunk)::integer));
  for k in 1 .. v_lanes - 1 loop
    select c.customer_id into v_bound from public.customers c
     order by c.customer_id offset (k * v_customers / v_lanes) limit 1;
    if v_bound is not null and (cardinality(v_bounds) = 0 or v_bound > v_bounds[cardinality(v_bounds)]) then
      v_bounds := v_bounds || v_bound;
    end if;
  end loop;
  insert into public.campaign_generation_lanes (campaign_id, lane, lower_bound, upper_bound)
  select p_campaign_id, k - 1, v_bounds[k - 1], v_bounds[k]
    from generate_series(1, cardinality(v_bounds) + 1) k
  on conflict do nothing;
  return cardinality(v_bounds) + 1;
end;
$$;

--
-- Name: FUNCTION plan_campaign_generation(p_campaign_id uuid, p_lanes integer, p_chunk integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.plan_campaign_generation(p_campaign_id uuid, p_lanes integer, p_chunk integer) IS 'Splits a new campaign''s customers into p_lanes (default mailer.generation_lanes, else 2) customer_id ranges of about equal size, at most one per p_chunk customers (default mailer.generation_chunk, else 50,000); returns the number of lanes. A campaign that has lanes keeps them.';

--
-- Name: prune_sns_messages(interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.prune_sns_messages(p_keep interval) RETURNS integer
    LANGUAGE sql
    AS $$
  with gone as (
    delete from public.sns_messages where received_at < now() - p_keep returning 1
  )
  select count(*)::integer from gone;
$$;

--
-- Name: FUNCTION prune_sns_messages(p_keep interval); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.prune_sns_messages(p_keep interval) IS 'Forgets SNS MessageIds received longer ago than p_keep (redelivery dedupe only needs hours).';

--
-- Name: queue_campaign(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.queue_campaign(p_campaign_id uuid) RETURNS text
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
  select public.set_campaign_status(p_campaign_id, 'queue_campaign', array['draft'], 'queued');
$$;

--
-- Name: FUNCTION queue_campaign(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.queue_campaign(p_campaign_id uuid) IS 'Starts sending a draft campaign: queued, its first send jobs added in the same transaction and its feeder queued for the rest. Returns the new status (done when nothing is left to send). No-op when already queued or sending.';

--
-- Name: reconcile_in_doubt(interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.reconcile_in_doubt(p_lease interval DEFAULT '00:02:00'::interval) RETURNS TABLE(campaign_id uuid, customer_id uuid, recipient_status text, event_id uuid, event_type text, error text)
    LANGUAGE plpgsql
    AS $$
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

--
-- Name: FUNCTION reconcile_in_doubt(p_lease interval); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.reconcile_in_doubt(p_lease interval) IS 'Settles in_doubt recipients with their own SES evidence only (in_doubt_evidence; p_lease is SEND_CLAIM_LEASE_SECONDS, the attempt''s window): complaint -> complained, permanent bounce -> bounced, reject/rendering failure -> failed, any other delivery event -> sent. One row per recipient settled, or per recipient that failed (error set; the others are still settled). Recipients without evidence stay in_doubt.';

--
-- Name: record_automatic_pause(uuid, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.record_automatic_pause(p_campaign_id uuid, p_reason text, p_guard text) RETURNS bigint
    LANGUAGE sql
    AS $$
  insert into public.operator_actions (action, campaign_id, note, details, actor)
  values ('auto_pause', p_campaign_id, p_reason,
          jsonb_build_object('automatic', true, 'guard', p_guard), 'mailer:' || p_guard)
  returning action_id;
$$;

--
-- Name: FUNCTION record_automatic_pause(p_campaign_id uuid, p_reason text, p_guard text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.record_automatic_pause(p_campaign_id uuid, p_reason text, p_guard text) IS 'Records a pause mailer made by itself (p_guard: failure-guard, reputation-guard, ses-error) in operator_actions: action auto_pause, actor mailer:<p_guard>, the reason as its note.';

--
-- Name: record_operator_action(text, text, uuid, uuid, text, jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.record_operator_action(p_action text, p_email text, p_campaign_id uuid, p_customer_id uuid, p_note text, p_details jsonb) RETURNS bigint
    LANGUAGE sql
    AS $$
  insert into public.operator_actions (action, email, campaign_id, customer_id, note, details)
  values (p_action, p_email, p_campaign_id, p_customer_id, nullif(btrim(p_note), ''),
          coalesce(p_details, '{}'))
  returning action_id;
$$;

--
-- Name: FUNCTION record_operator_action(p_action text, p_email text, p_campaign_id uuid, p_customer_id uuid, p_note text, p_details jsonb); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.record_operator_action(p_action text, p_email text, p_campaign_id uuid, p_customer_id uuid, p_note text, p_details jsonb) IS 'Appends one row to operator_actions; called by the operator functions in the same transaction as their change.';

--
-- Name: record_send_outcomes(uuid[], uuid[], integer[], text[], text[], text[], timestamp with time zone[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.record_send_outcomes(p_campaign_ids uuid[], p_customer_ids uuid[], p_attempts integer[], p_outcomes text[], p_message_ids text[], p_errors text[], p_retry_at timestamp with time zone[]) RETURNS TABLE(ord integer, recorded text)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
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

--
-- Name: FUNCTION record_send_outcomes(p_campaign_ids uuid[], p_customer_ids uuid[], p_attempts integer[], p_outcomes text[], p_message_ids text[], p_errors text[], p_retry_at timestamp with time zone[]); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.record_send_outcomes(p_campaign_ids uuid[], p_customer_ids uuid[], p_attempts integer[], p_outcomes text[], p_message_ids text[], p_errors text[], p_retry_at timestamp with time zone[]) IS 'Records what happened to claimed recipients in one transaction (sent | failed | in_doubt | released: back to pending with a new job at p_retry_at | paused: back to pending, campaign paused), each only for the claim of its attempt (p_attempts: the claim''s attempt_count). One row per array position (ord): unchanged (not claimed any more), stale (claimed again since: dropped), recorded, or recorded_check (call finish_campaign_if_complete after the commit).';

--
-- Name: record_sns_notifications(text[], text[], json[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.record_sns_notifications(p_message_ids text[], p_topic_arns text[], p_envelopes json[]) RETURNS TABLE(ord integer, fresh boolean)
    LANGUAGE plpgsql
    AS $$
declare
  v_fresh integer[];
begin
  if cardinality(p_message_ids) is distinct from cardinality(p_topic_arns)
     or cardinality(p_message_ids) is distinct from cardinality(p_envelopes) then
    raise exception 'record_sns_notifications: % message ids, % topics, % envelopes',
      cardinality(p_message_ids), cardinality(p_topic_arns), cardinality(p_envelopes)
      using errcode = '22023';
  end if;
  -- A MessageId twice in one batch (SNS redelivering while the first is in flight) is fresh once:
  -- ON CONFLICT DO NOTHING skips the second row, and the first ord of each inserted id is fresh.
  with input as (
    select i.message_id, i.topic_arn, i.n::integer as n
      from unnest(p_message_ids, p_topic_arns) with ordinality as i(message_id, topic_arn, n)
  ), inserted as (
    insert into public.sns_messages (sns_message_id, topic_arn)
    select input.message_id, input.topic_arn from input order by input.n
    on conflict (sns_message_id) do nothing
    returning sns_message_id
  )
  select coalesce(array_agg(first_ord order by first_ord), '{}') into v_fresh
    from (select min(input.n) as first_ord
            from input join inserted on inserted.sns_message_id = input.message_id
           group by input.message_id) f;
  if cardinality(v_fresh) > 0 then
    perform graphile_worker.add_jobs(array(
      select row('process_ses_event', p_envelopes[o], null, null, null, null, null, null)
               ::graphile_worker.job_spec
        from unnest(v_fresh) o order by o));
  end if;
  return query
    select s.n, s.n = any(v_fresh)
      from generate_subscripts(p_message_ids, 1) as s(n) order by s.n;
end;
$$;

--
-- Name: FUNCTION record_sns_notifications(p_message_ids text[], p_topic_arns text[], p_envelopes json[]); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.record_sns_notifications(p_message_ids text[], p_topic_arns text[], p_envelopes json[]) IS 'Remembers each verified SNS Notification and enqueues one process_ses_event per new MessageId, in one statement for all the notifications that arrived together. Returns (ord, fresh) per input, ord 1-based; fresh is false for a MessageId seen before (or earlier in the same batch).';

--
-- Name: record_test_send(integer, uuid, text[], uuid, text[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.record_test_send(p_week integer, p_template_id uuid, p_to text[], p_customer_id uuid, p_message_ids text[]) RETURNS bigint
    LANGUAGE sql
    AS $$
  select public.record_operator_action('test_send', null, null, p_customer_id, null,
    jsonb_build_object('week_of_month', p_week, 'template_id', p_template_id, 'to', p_to,
                       'message_ids', p_message_ids));
$$;

--
-- Name: FUNCTION record_test_send(p_week integer, p_template_id uuid, p_to text[], p_customer_id uuid, p_message_ids text[]); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.record_test_send(p_week integer, p_template_id uuid, p_to text[], p_customer_id uuid, p_message_ids text[]) IS 'Records a test send (mailer campaign test): the week, template, addresses and SES message ids, and the customer whose data it was rendered with (null: sample data).';

--
-- Name: release_dead_workers(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.release_dead_workers() RETURNS integer
    LANGUAGE plpgsql
    AS $$
declare
  v_processes text[];
  v_ids text[];
  v_campaigns uuid[];
  v_campaign uuid;
begin
  with dead as (
    delete from public.worker_processes w
     where not exists (select 1 from pg_stat_activity a where a.application_name = w.process_id)
    returning w.process_id, w.worker_ids
  )
  select coalesce((select array_agg(d.process_id) from dead d), '{}'),
         coalesce((select array_agg(id) from dead d, unnest(d.worker_ids) as id), '{}')
    into v_processes, v_ids;
  if cardinality(v_processes) = 0 then
    return 0;
  end if;

  -- The claims sending under a dead process: in doubt now (SendEmail may or may not have
  -- happened), not after the lease. Reads the small partial index of sending rows.
  with settled as (
    update public.campaign_recipients r
       set recipient_status = 'in_doubt',
           last_error = format('worker process %s died holding the claim (no outcome recorded)',
                               r.claimed_by)
      from (select e.campaign_id, e.customer_id from public.campaign_recipients e
             where e.recipient_status = 'sending' and e.claimed_by = any(v_processes)
             order by e.campaign_id, e.customer_id
               for update) e
     where r.campaign_id = e.campaign_id and r.customer_id = e.customer_id
       and r.recipient_status = 'sending'
    returning r.campaign_id
  )
  select coalesce(array_agg(distinct s.campaign_id order by s.campaign_id), '{}')
    into v_campaigns from settled s;

  if cardinality(v_ids) > 0 then
    perform graphile_worker.force_unlock_workers(v_ids);
  end if;
  -- Their campaigns can finish now (in campaign_id order, the lock order).
  foreach v_campaign in array v_campaigns loop
    perform public.finish_campaign_if_complete(v_campaign);
  end loop;
  return cardinality(v_processes);
end;
$$;

--
-- Name: FUNCTION release_dead_workers(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.release_dead_workers() IS 'For worker processes that no longer have a database connection (SIGKILL, crash): their claims become in_doubt at once, their jobs are unlocked, their campaigns finish if nothing is left. Returns how many processes were found dead. Runs in a transaction of its own: its finishing locks, taken after another function''s, would break the lock order.';

--
-- Name: request_campaign_queue(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.request_campaign_queue(p_campaign_id uuid) RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
declare
  v_status text;
  v_request bigint;
  v_actor text := coalesce(nullif(current_setting('mailer.actor', true), ''), session_user);
begin
  select status into v_status from public.campaigns where campaign_id = p_campaign_id for update;
  if not found then
    raise exception 'request_campaign_queue: no campaign %', p_campaign_id
      using errcode = 'no_data_found';
  end if;
  if v_status <> 'draft' then
    raise exception 'request_campaign_queue: campaign % is %; only a draft is queued',
      p_campaign_id, v_status using errcode = 'check_violation';
  end if;
  select request_id into v_request from public.campaign_queue_requests
   where campaign_id = p_campaign_id and approved_by is null;
  if found then
    return v_request; -- already asked: one pending request per campaign
  end if;
  insert into public.campaign_queue_requests (campaign_id, requested_by)
  values (p_campaign_id, v_actor) returning request_id into v_request;
  perform public.record_operator_action('queue_requested', null, p_campaign_id, null, null,
    jsonb_build_object('request_id', v_request));
  return v_request;
end;
$$;

--
-- Name: FUNCTION request_campaign_queue(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.request_campaign_queue(p_campaign_id uuid) IS 'Asks for a draft to be queued (CONSOLE_QUEUE_APPROVAL): a second person approves with approve_campaign_queue. Returns the pending request''s id. Recorded.';

--
-- Name: requeue_orphaned_recipients(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.requeue_orphaned_recipients() RETURNS integer
    LANGUAGE plpgsql
    AS $$
declare
  v_count integer;
begin
  if exists (select 1 from graphile_worker.jobs j
              where j.task_identifier = 'send_recipient'
                and (j.attempts < j.max_attempts or j.locked_at is not null)) then
    return 0;
  end if;
  -- Only recipients the feeder has passed (at most its window per campaign); the rest are its
  -- to feed.
  select count(*)::integer into v_count from graphile_worker.add_jobs(
    array(
      select row(
        'send_recipient',
        json_build_object('campaign_id', r.campaign_id, 'customer_id', r.customer_id),
        null, null, null,
        'send_recipient:' || r.campaign_id || ':' || r.customer_id,
        null, null)::graphile_worker.job_spec
        from public.campaigns c
        join public.campaign_feeds f on f.campaign_id = c.campaign_id
        join public.campaign_recipients r on r.campaign_id = c.campaign_id
       where c.status in ('queued', 'sending') and r.recipient_status = 'pending'
         and r.customer_id <= f.fed_through
         and not exists (
           select 1 from graphile_worker.jobs j
            where j.key = 'send_recipient:' || r.campaign_id || ':' || r.customer_id)
       order by r.campaign_id, r.customer_id),
    true);
  return v_count;
end;
$$;

--
-- Name: FUNCTION requeue_orphaned_recipients(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.requeue_orphaned_recipients() IS 'Called by the sweep: once no send_recipient job can still run, queues the pending recipients of queued and sending campaigns that the feeder has passed but that have no job at all (lost by hand or by a race). Returns how many.';

--
-- Name: reserve_send_slots(double precision, integer); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.reserve_send_slots(p_rate double precision, p_count integer) RETURNS timestamp with time zone
    LANGUAGE plpgsql
    AS $$
declare
  v_step interval := make_interval(secs => 1 / p_rate);
  v_first timestamptz;
begin
  perform set_config('synchronous_commit', 'off', true);
  insert into public.send_pacer as p (id, next_slot, rate)
  values (true, clock_timestamp() + p_count * v_step, p_rate)
  on conflict (id) do update
    set next_slot = greatest(p.next_slot, clock_timestamp()) + p_count * v_step, rate = p_rate
  returning p.next_slot - p_count * v_step into v_first;
  return v_first;
end;
$$;

--
-- Name: FUNCTION reserve_send_slots(p_rate double precision, p_count integer); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.reserve_send_slots(p_rate double precision, p_count integer) IS 'Reserves p_count consecutive send slots at p_rate per second across all workers; returns the first (the others follow 1 / p_rate apart).';

--
-- Name: reserve_send_slots_and_claim(double precision, uuid[], uuid[], interval, interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.reserve_send_slots_and_claim(p_rate double precision, p_campaign_ids uuid[], p_customer_ids uuid[], p_lease interval, p_lead interval) RETURNS TABLE(ord integer, slot timestamp with time zone, claimed boolean, outcome text, email text, template_data jsonb, provider text, provider_template_name text, template_id uuid, attempt_count integer)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
#variable_conflict use_column
declare
  -- reserve_send_slots_for turns synchronous_commit off for its transaction; a claim must be
  -- durable before its send, so the setting is put back when anything is claimed.
  v_sync text := current_setting('synchronous_commit');
  v_step interval := make_interval(secs => 1 / p_rate);
  v_count integer := coalesce(cardinality(p_campaign_ids), 0);
  v_first timestamptz;
  v_slots timestamptz[];
  v_due integer[];
begin
  -- All due: the batch's slots taken under the pacer row's lock, held to the commit.
  update public.send_pacer p
     set next_slot = greatest(p.next_slot, clock_timestamp()) + v_count * v_step, rate = p_rate
   where p.id and v_count > 0
     and greatest(p.next_slot, clock_timestamp()) + (v_count - 1) * v_step
         <= clock_timestamp() + p_lead
  returning p.next_slot - v_count * v_step into v_first;
  if found then
    -- The claimed ones get the first slots in order; the rest are given back in the same
    -- statement (no other transaction can have moved the row since).
    return query
      with c as materialized (
        select c.*,
               count(*) filter (where c.outcome = 'claimed') over (order by c.ord) as nth,
               count(*) filter (where c.outcome = 'claimed') over () as claims
          from public.claim_recipients(p_campaign_ids, p_customer_ids, p_lease) c
      ), given_back as (
        update public.send_pacer p
           set next_slot = p.next_slot - (v_count - (select max(c.claims) from c)) * v_step
         where p.id and (select max(c.claims) from c) < v_count
      )
      select c.ord, case when c.outcome = 'claimed' then v_first + (c.nth - 1) * v_step end,
             c.outcome = 'claimed', c.outcome, c.email, c.template_data, c.provider,
             c.provider_template_name, c.template_id, c.attempt_count
        from c
       order by c.ord;
    return;
  end if;

  select array_agg(s.slot order by s.ord) into v_slots
    from public.reserve_send_slots_for(p_rate, p_campaign_ids, p_customer_ids) s;
  select array_agg(i order by i) into v_due
    from generate_subscripts(v_slots, 1) i
   where v_slots[i] <= clock_timestamp() + p_lead;
  if coalesce(cardinality(v_due), 0) = 0 then
    return query
      select i, v_slots[i], false, null::text, null::text, null::jsonb, null::text, null::text,
             null::uuid, null::integer
        from generate_subscripts(v_slots, 1) i
       order by i;
    return;
  end if;
  perform set_config('synchronous_commit', v_sync, true);
  -- The due ones in the callers' order (sorted by key: the lock order claim_recipients expects);
  -- claim_recipients' ord is the position among them.
  return query
    with c as (
      select v_due[c.ord] as ord, c.outcome, c.email, c.template_data, c.provider,
             c.provider_template_name, c.template_id, c.attempt_count
        from public.claim_recipients(
               array(select p_campaign_ids[u.d] from unnest(v_due) with ordinality u(d, n)
                      order by u.n),
               array(select p_customer_ids[u.d] from unnest(v_due) with ordinality u(d, n)
                      order by u.n),
               p_lease) c
    )
    select i, v_slots[i], c.ord is not null, c.outcome, c.email, c.template_data, c.provider,
           c.provider_template_name, c.template_id, c.attempt_count
      from generate_subscripts(v_slots, 1) i
      left join c on c.ord = i
     order by i;
end;
$$;

--
-- Name: FUNCTION reserve_send_slots_and_claim(p_rate double precision, p_campaign_ids uuid[], p_customer_ids uuid[], p_lease interval, p_lead interval); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.reserve_send_slots_and_claim(p_rate double precision, p_campaign_ids uuid[], p_customer_ids uuid[], p_lease interval, p_lead interval) IS 'Send slots for a batch at p_rate with the claims of the recipients whose slot is due within p_lead, in one transaction: row ord (1-based) has its slot (null: not pending or not sendable) and, when claimed is true, its claim as claim_recipients returns it. When every slot is due, all are claimed and only the claimed get slots; otherwise reserve_send_slots_for, then claim_recipients for the due ones. Committed synchronously when anything was claimed. Callers pass the arrays sorted by (campaign_id, customer_id).';

--
-- Name: reserve_send_slots_for(double precision, uuid[], uuid[]); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.reserve_send_slots_for(p_rate double precision, p_campaign_ids uuid[], p_customer_ids uuid[]) RETURNS TABLE(ord integer, slot timestamp with time zone)
    LANGUAGE plpgsql
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
declare
  v_step interval := make_interval(secs => 1 / p_rate);
  v_eligible int[];
  v_count int;
  v_first timestamptz;
begin
  -- The reservation need not wait for its WAL flush: a send leaves only after its claim, whose
  -- synchronous commit comes later and flushes the WAL up to it, this update included. A
  -- reservation lost in a server crash was therefore never sent on.
  perform set_config('synchronous_commit', 'off', true);
  -- The recipients read before the pacer row is locked, so its lock is held only for the update.
  select array_agg(k.ord::int order by k.ord) into v_eligible
    from unnest(p_campaign_ids, p_customer_ids) with ordinality as k(campaign_id, customer_id, ord)
   where exists (select 1 from public.campaign_recipients r
                   join public.campaigns c on c.campaign_id = r.campaign_id
                  where r.campaign_id = k.campaign_id and r.customer_id = k.customer_id
                    and r.recipient_status = 'pending' and c.status in ('queued', 'sending'));
  v_count := coalesce(cardinality(v_eligible), 0);
  if v_count > 0 then
    insert into public.send_pacer as p (id, next_slot, rate)
    values (true, clock_timestamp() + v_count * v_step, p_rate)
    on conflict (id) do update
      set next_slot = greatest(p.next_slot, clock_timestamp()) + v_count * v_step, rate = p_rate
    returning p.next_slot - v_count * v_step into v_first;
  end if;
  return query
    select s.ord::int, v_first + (e.nth - 1) * v_step
      from generate_subscripts(p_campaign_ids, 1) as s(ord)
      left join unnest(v_eligible) with ordinality as e(ord, nth) on e.ord = s.ord
     order by s.ord;
end;
$$;

--
-- Name: FUNCTION reserve_send_slots_for(p_rate double precision, p_campaign_ids uuid[], p_customer_ids uuid[]); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.reserve_send_slots_for(p_rate double precision, p_campaign_ids uuid[], p_customer_ids uuid[]) IS 'Pacing slots for a batch of recipients, one round trip and one update of send_pacer: row ord (1-based, the arrays'' order) gets the next free slots in order at p_rate per second, or null when its recipient is not pending or its campaign not queued or sending.';

--
-- Name: resolve_in_doubt(uuid, uuid, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.resolve_in_doubt(p_campaign_id uuid, p_customer_id uuid, p_decision text, p_note text DEFAULT NULL::text) RETURNS text
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
declare
  v_recipient public.campaign_recipients;
  v_campaign_status text;
  v_result text;
begin
  if p_decision is null or p_decision not in ('sent', 'resend', 'failed') then
    raise exception 'resolve_in_doubt: decision must be sent, resend or failed, got %', coalesce(p_decision, 'null')
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
  elsif p_decision = 'failed' then
    -- SES did not take it (its console, or the error the endpoint logged): nothing is sent, and
    -- the report counts it as failed; retry_failed_recipients can send it later.
    update public.campaign_recipients
       set recipient_status = 'failed', last_error = 'in doubt; marked not sent (failed) by an operator'
     where campaign_id = p_campaign_id and customer_id = p_customer_id;
    v_result := 'failed';
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

--
-- Name: FUNCTION resolve_in_doubt(p_campaign_id uuid, p_customer_id uuid, p_decision text, p_note text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.resolve_in_doubt(p_campaign_id uuid, p_customer_id uuid, p_decision text, p_note text) IS 'The operator''s decision on an in_doubt recipient: ''sent'' (SES did take it) marks it sent; ''resend'' sets it pending and enqueues one send_recipient job (the recipient may get it twice); ''failed'' (SES did not take it) marks it failed, sending nothing. Recorded in operator_actions. Refuses a recipient that is not in_doubt.';

--
-- Name: resume_campaign(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.resume_campaign(p_campaign_id uuid) RETURNS text
    LANGUAGE sql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
  select public.set_campaign_status(p_campaign_id, 'resume_campaign', array['paused'], 'queued');
$$;

--
-- Name: FUNCTION resume_campaign(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.resume_campaign(p_campaign_id uuid) IS 'Resumes a paused campaign: queued again, its pending recipients fed send jobs again from the start (job keys keep one job per recipient). Returns the new status.';

--
-- Name: retry_failed_jobs(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.retry_failed_jobs(p_task text DEFAULT NULL::text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
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

--
-- Name: FUNCTION retry_failed_jobs(p_task text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.retry_failed_jobs(p_task text) IS 'Runs every failed job (attempts >= max_attempts) again now with attempts reset, of one task or (null) all tasks; returns how many.';

--
-- Name: retry_failed_recipients(uuid, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.retry_failed_recipients(p_campaign_id uuid, p_reason text DEFAULT NULL::text) RETURNS integer
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
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

--
-- Name: FUNCTION retry_failed_recipients(p_campaign_id uuid, p_reason text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.retry_failed_recipients(p_campaign_id uuid, p_reason text) IS 'Queues the failed (and not suppressed) recipients of a campaign again, once per call; recorded in operator_actions. Returns how many.';

--
-- Name: retry_job(bigint); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.retry_job(p_job_id bigint) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
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

--
-- Name: FUNCTION retry_job(p_job_id bigint); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.retry_job(p_job_id bigint) IS 'Runs a job again now with its attempts reset to 0 (a failed one, or one waiting out a retry backoff).';

--
-- Name: schedule_campaign(uuid, timestamp with time zone); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.schedule_campaign(p_campaign_id uuid, p_at timestamp with time zone) RETURNS timestamp with time zone
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
declare
  v_campaign public.campaigns;
begin
  if p_at is null then
    raise exception 'schedule_campaign: a time is required' using errcode = 'invalid_parameter_value';
  end if;
  select * into v_campaign from public.campaigns where campaign_id = p_campaign_id for update;
  if not found then
    raise exception 'schedule_campaign: no campaign %', p_campaign_id using errcode = 'no_data_found';
  end if;
  if v_campaign.status <> 'draft' then
    raise exception 'schedule_campaign: campaign % is %; only a draft can be scheduled',
      p_campaign_id, v_campaign.status using errcode = 'check_violation';
  end if;
  if p_at <= now() then
    raise exception 'schedule_campaign: % is in the past (now %)', p_at, now()
      using errcode = 'invalid_parameter_value',
            hint = 'queue it now with queue_campaign, or give a later time';
  end if;
  update public.campaigns set scheduled_at = p_at where campaign_id = p_campaign_id;
  -- job_key_mode replace: scheduling again moves the one job to the new time.
  perform graphile_worker.add_job('queue_scheduled_campaign',
    json_build_object('campaign_id', p_campaign_id),
    run_at => p_at, job_key => public.scheduled_campaign_job_key(p_campaign_id),
    job_key_mode => 'replace');
  perform public.record_operator_action('schedule_campaign', null, p_campaign_id, null, null,
    jsonb_build_object('at', p_at, 'previous', v_campaign.scheduled_at));
  return p_at;
end;
$$;

--
-- Name: FUNCTION schedule_campaign(p_campaign_id uuid, p_at timestamp with time zone); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.schedule_campaign(p_campaign_id uuid, p_at timestamp with time zone) IS 'Queues a draft campaign at p_at (a job keyed per campaign; scheduling again moves it). Refuses a time not in the future and a campaign that is not a draft. Recorded in operator_actions.';

--
-- Name: scheduled_campaign_job_key(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.scheduled_campaign_job_key(p_campaign_id uuid) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
  select 'queue_scheduled_campaign:' || p_campaign_id::text;
$$;

--
-- Name: FUNCTION scheduled_campaign_job_key(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.scheduled_campaign_job_key(p_campaign_id uuid) IS 'The graphile-worker job key of a campaign''s scheduled queueing (one job per campaign).';

--
-- Name: ses_event_addresses(jsonb, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ses_event_addresses(p_event jsonb, p_type text) RETURNS text[]
    LANGUAGE sql IMMUTABLE
    AS $$
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
  ), addresses as (
    select distinct x.a
      from raw, lateral (select lower(btrim(coalesce(substring(address from '<([^<>]+)>'), address)))) x(a)
     where x.a like '%_@_%'
  )
  -- The order _150_keep_strongest locks in: its bucket, then the address.
  select coalesce(array_agg(a order by hashtext(a) & 255, a), '{}') from addresses;
$$;

--
-- Name: FUNCTION ses_event_addresses(p_event jsonb, p_type text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ses_event_addresses(p_event jsonb, p_type text) IS 'Recipient addresses an SES event is about (bare, lowercase), from its detail or mail.destination, in the suppression trigger''s lock order (hashtext(email) & 255, then the address).';

--
-- Name: ses_event_sent_at(jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ses_event_sent_at(p_event jsonb) RETURNS timestamp with time zone
    LANGUAGE plpgsql STABLE
    AS $$
begin
  return (p_event #>> '{mail,timestamp}')::timestamptz;
exception when data_exception then
  return null;
end;
$$;

--
-- Name: FUNCTION ses_event_sent_at(p_event jsonb); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ses_event_sent_at(p_event jsonb) IS 'When SES accepted the message an event is about (mail.timestamp), null when missing or unreadable.';

--
-- Name: ses_event_tags(jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ses_event_tags(p_event jsonb, OUT tagged boolean, OUT campaign_id uuid, OUT customer_id uuid) RETURNS record
    LANGUAGE sql IMMUTABLE
    AS $_$
  select t.c is not null or t.u is not null,
         case when t.c ~* t.re and t.u ~* t.re then t.c::uuid end,
         case when t.c ~* t.re and t.u ~* t.re then t.u::uuid end
    from (select coalesce(p_event #>> '{mail,tags,campaign_id,0}', p_event #>> '{mail,tags,campaign_id}') as c,
                 coalesce(p_event #>> '{mail,tags,customer_id,0}', p_event #>> '{mail,tags,customer_id}') as u,
                 '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' as re) t;
$_$;

--
-- Name: FUNCTION ses_event_tags(p_event jsonb, OUT tagged boolean, OUT campaign_id uuid, OUT customer_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ses_event_tags(p_event jsonb, OUT tagged boolean, OUT campaign_id uuid, OUT customer_id uuid) IS 'The campaign_id/customer_id EmailTags of an SES event: tagged when either is present; the ids only when both are UUIDs (then they name the one recipient the message was sent to).';

--
-- Name: ses_event_type(jsonb); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.ses_event_type(p_event jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE
    AS $$
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

--
-- Name: FUNCTION ses_event_type(p_event jsonb); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.ses_event_type(p_event jsonb) IS 'The email_events_op.event_type of an SES event (eventType or notificationType), null when unknown.';

--
-- Name: set_campaign_status(uuid, text, text[], text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.set_campaign_status(p_campaign_id uuid, p_action text, p_from text[], p_to text) RETURNS text
    LANGUAGE plpgsql
    AS $$
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
         pause_reason = case when p_to = 'paused' then format('paused by operator %s',
           coalesce(nullif(current_setting('mailer.actor', true), ''), session_user)) end
   where campaign_id = p_campaign_id;
  perform public.record_operator_action(p_action, null, p_campaign_id, null, null,
    jsonb_build_object('from', v_status, 'to', p_to));
  -- Entering queued with nothing to send ends the campaign at once (the enqueue trigger).
  select status into v_status from public.campaigns where campaign_id = p_campaign_id;
  return v_status;
end;
$$;

--
-- Name: FUNCTION set_campaign_status(p_campaign_id uuid, p_action text, p_from text[], p_to text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.set_campaign_status(p_campaign_id uuid, p_action text, p_from text[], p_to text) IS 'Shared body of queue/pause/resume_campaign: moves a campaign from one of p_from to p_to and records it; a pause names the actor (mailer.actor, else the database login).';

--
-- Name: start_scheduled_campaign(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.start_scheduled_campaign(p_campaign_id uuid, OUT status text, OUT scheduled_at timestamp with time zone) RETURNS record
    LANGUAGE plpgsql
    AS $$
declare
  v_campaign public.campaigns;
begin
  select * into v_campaign from public.campaigns c where c.campaign_id = p_campaign_id for update;
  if not found then
    status := 'missing';
    return;
  end if;
  status := v_campaign.status;
  scheduled_at := v_campaign.scheduled_at;
  if v_campaign.status <> 'draft' or v_campaign.scheduled_at is null then
    return;
  end if;
  if v_campaign.scheduled_at > now() then
    perform graphile_worker.add_job('queue_scheduled_campaign',
      json_build_object('campaign_id', p_campaign_id), run_at => v_campaign.scheduled_at,
      job_key => public.scheduled_campaign_job_key(p_campaign_id), job_key_mode => 'replace');
    return;
  end if;
  status := public.set_campaign_status(p_campaign_id, 'queue_campaign', array['draft'], 'queued');
  scheduled_at := null;
end;
$$;

--
-- Name: FUNCTION start_scheduled_campaign(p_campaign_id uuid, OUT status text, OUT scheduled_at timestamp with time zone); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.start_scheduled_campaign(p_campaign_id uuid, OUT status text, OUT scheduled_at timestamp with time zone) IS 'Queues a scheduled draft whose time has come (as queue_campaign does, recorded as queue_campaign); returns the campaign''s status and remaining schedule (status missing when it is gone).';

--
-- Name: suppress_email(text, text, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.suppress_email(p_email text, p_reason text DEFAULT 'manual'::text, p_note text DEFAULT NULL::text) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
declare
  v_email text := public.normalize_email(p_email);
  v_problem text := public.email_problem(p_email);
  v_reason text := coalesce(p_reason, 'manual');
  v_before text;
begin
  if v_problem is not null then
    raise exception 'suppress_email: % is not an address (%)', coalesce(p_email, 'null'), v_problem
      using errcode = 'invalid_parameter_value';
  end if;
  -- Not locked: the trigger takes the lock the other writers take (locking the row first here
  -- would take the two in the opposite order). The answer is about this call only.
  select reason into v_before from public.suppression_list where email = v_email;
  insert into public.suppression_list (email, reason, source)
  values (v_email, v_reason, 'ops')
  on conflict (email) do nothing; -- _150_keep_strongest strengthens a weaker entry
  if not found and public.suppression_strength(v_reason) <= public.suppression_strength(v_before) then
    return false; -- already suppressed at least as strongly; the entry stays as it was
  end if;
  perform public.record_operator_action('suppress', v_email, null, null, p_note,
    jsonb_strip_nulls(jsonb_build_object('reason', v_reason, 'previous_reason', v_before)));
  return true;
end;
$$;

--
-- Name: FUNCTION suppress_email(p_email text, p_reason text, p_note text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.suppress_email(p_email text, p_reason text, p_note text) IS 'Suppresses an address (source ops, reason manual unless given); its pending recipients in every campaign become suppressed. An entry with a weaker reason takes the new one (complaint > unsubscribe > bounce_hard > manual). Returns false when it was already suppressed at least as strongly (the entry is kept as it was).';

--
-- Name: suppression_strength(text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.suppression_strength(p_reason text) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select case p_reason when 'complaint' then 4 when 'unsubscribe' then 3
                       when 'bounce_hard' then 2 when 'manual' then 1 end;
$$;

--
-- Name: FUNCTION suppression_strength(p_reason text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.suppression_strength(p_reason text) IS 'How binding a suppression reason is: complaint 4 > unsubscribe 3 > bounce_hard 2 > manual 1. The stronger reason always wins.';

--
-- Name: sweep_send_claims(interval); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.sweep_send_claims(p_lease interval) RETURNS integer
    LANGUAGE plpgsql
    AS $$
declare
  v_count integer;
  v_campaign uuid;
begin
  update public.campaign_recipients r
     set recipient_status = 'in_doubt', last_error = 'claim expired without a recorded outcome'
    from (select e.campaign_id, e.customer_id from public.campaign_recipients e
           where e.recipient_status = 'sending' and e.last_attempt_at < now() - p_lease
           order by e.campaign_id, e.customer_id
             for update) e
   where r.campaign_id = e.campaign_id and r.customer_id = e.customer_id
     and r.recipient_status = 'sending';
  get diagnostics v_count = row_count;
  for v_campaign in
    select c.campaign_id from public.campaigns c
     where c.status in ('queued', 'sending') order by c.campaign_id
  loop
    perform public.finish_campaign_if_complete(v_campaign);
  end loop;
  return v_count;
end;
$$;

--
-- Name: FUNCTION sweep_send_claims(p_lease interval); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.sweep_send_claims(p_lease interval) IS 'Declares stale claims in_doubt and finishes campaigns with nothing left to send (in campaign_id order, the lock order of record_send_outcomes).';

--
-- Name: tg__lowercase_email(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.tg__lowercase_email() RETURNS trigger
    LANGUAGE plpgsql IMMUTABLE
    AS $$
begin
  new.email := lower(btrim(new.email));
  return new;
end;
$$;

--
-- Name: FUNCTION tg__lowercase_email(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.tg__lowercase_email() IS 'Normalises email to trimmed lowercase before the uniqueness and format checks run.';

--
-- Name: tg__timestamps(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.tg__timestamps() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  if tg_op = 'INSERT' then
    new.created_at := coalesce(new.created_at, now());
    new.updated_at := new.created_at;
  else
    new.created_at := old.created_at;
    new.updated_at := now();
  end if;
  return new;
end;
$$;

--
-- Name: FUNCTION tg__timestamps(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.tg__timestamps() IS 'Keeps created_at as inserted and sets updated_at to now(). Its _200_timestamps triggers run only when the row would otherwise be wrong (their WHEN clauses), so an update that sets updated_at = now() itself (the send path''s) skips the function call.';

--
-- Name: tg_campaigns__check_transition(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.tg_campaigns__check_transition() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
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
  if new.status = 'done' and new.generating then
    raise exception 'campaign %: cannot be done while its recipients are still being generated',
      old.campaign_id using errcode = 'check_violation';
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

--
-- Name: FUNCTION tg_campaigns__check_transition(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.tg_campaigns__check_transition() IS 'Refuses status changes that would lose or skip recipients (see README, campaign states).';

--
-- Name: tg_campaigns__dequeue_sends(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.tg_campaigns__dequeue_sends() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  -- After any feeder at work has committed, so none adds jobs behind this.
  perform pg_advisory_xact_lock(public.feed_lock_key(new.campaign_id));
  -- By job key ('send_recipient:<campaign>:<customer>'), at most the feeder's window of them.
  -- Jobs already taken by a worker (locked) run and find the campaign paused; a job released
  -- after a refused connection has no key, stays, and ends without a slot when it runs.
  perform graphile_worker.complete_jobs(array(
    select j.id from graphile_worker.jobs j
     where j.task_identifier = 'send_recipient' and j.locked_at is null
       and left(j.key, 52) = 'send_recipient:' || new.campaign_id || ':'));
  return null;
end;
$$;

--
-- Name: FUNCTION tg_campaigns__dequeue_sends(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.tg_campaigns__dequeue_sends() IS 'A paused campaign''s waiting send jobs are removed, so they neither wait in front of other campaigns'' jobs nor spend send slots; resume queues its pending recipients again.';

--
-- Name: tg_campaigns__enqueue_sends(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.tg_campaigns__enqueue_sends() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  -- Waits for a feeder at work, then feeds from the start: the pause removed the waiting jobs.
  perform pg_advisory_xact_lock(public.feed_lock_key(new.campaign_id));
  update public.campaign_feeds set fed_through = null, updated_at = now()
   where campaign_id = new.campaign_id;
  -- A first batch in this transaction (a small campaign is queued whole), then the
  -- feeder for the rest, at once. Small, so that a resume commits in well under a second.
  perform public.feed_campaign_sends(new.campaign_id,
    p_batch => public.mailer_setting('feed_first_batch', 2000));
  -- Nothing to send (everyone suppressed, or already sent): the campaign is done right away,
  -- unless recipients are still being generated.
  if not new.generating and not exists (
       select 1 from public.campaign_recipients
        where campaign_id = new.campaign_id and recipient_status in ('pending', 'sending')) then
    update public.campaigns set status = 'done' where campaign_id = new.campaign_id;
  end if;
  return null;
end;
$$;

--
-- Name: FUNCTION tg_campaigns__enqueue_sends(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.tg_campaigns__enqueue_sends() IS 'On entering queued: feeds the first batch of send jobs in the same transaction (feed_campaign_sends) and leaves the rest to the campaign''s feed_campaign job.';

--
-- Name: tg_campaigns__leave_schedule(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.tg_campaigns__leave_schedule() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  if new.status <> 'draft' and old.scheduled_at is not null then
    new.scheduled_at := null;
    perform graphile_worker.remove_job(public.scheduled_campaign_job_key(new.campaign_id));
  end if;
  return new;
end;
$$;

--
-- Name: FUNCTION tg_campaigns__leave_schedule(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.tg_campaigns__leave_schedule() IS 'A campaign leaving draft (queued by hand or at its time) forgets its schedule and its job.';

--
-- Name: tg_suppression_list__keep_strongest(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.tg_suppression_list__keep_strongest() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
begin
  -- Two first suppressions of one address at the same moment: without this lock the second
  -- insert would find no row to strengthen, then lose to the first one's on conflict. 256
  -- buckets keep a bulk insert's lock count bounded; sharing a bucket only queues for a moment.
  perform pg_advisory_xact_lock(hashtext('public.suppression_list'), hashtext(new.email) & 255);
  update public.suppression_list s
     set reason = new.reason, source = new.source
   where s.email = new.email
     and public.suppression_strength(s.reason) < public.suppression_strength(new.reason);
  return new; -- an existing entry makes the insert conflict (callers insert ... on conflict)
end;
$$;

--
-- Name: FUNCTION tg_suppression_list__keep_strongest(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.tg_suppression_list__keep_strongest() IS 'Before a suppression is inserted: an existing entry for the address with a weaker reason takes the new reason and source (created_at kept, updated_at moved); the insert then conflicts with it.';

--
-- Name: tg_suppression_list__never_weaken(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.tg_suppression_list__never_weaken() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  raise exception 'suppression_list: % is suppressed for %; a weaker reason (%) never replaces it',
    old.email, old.reason, new.reason
    using errcode = 'check_violation',
          hint = 'lift it with unsuppress_email (recorded), then suppress_email with the new reason';
end;
$$;

--
-- Name: FUNCTION tg_suppression_list__never_weaken(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.tg_suppression_list__never_weaken() IS 'Refuses an update that would replace a suppression reason by a weaker one.';

--
-- Name: tg_suppression_list__suppress_pending(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.tg_suppression_list__suppress_pending() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
begin
  update public.campaign_recipients r
     set recipient_status = 'suppressed', last_error = 'suppressed: ' || new.reason
    from public.customers c
   where c.email = new.email and r.customer_id = c.customer_id
     and r.email = new.email and r.recipient_status = 'pending';
  return null;
end;
$$;

--
-- Name: FUNCTION tg_suppression_list__suppress_pending(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.tg_suppression_list__suppress_pending() IS 'A new suppression stops the address''s still-pending recipients in every campaign (found through the customer with that address; one generated with an address its customer no longer has is suppressed by its claim instead).';

--
-- Name: unschedule_campaign(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.unschedule_campaign(p_campaign_id uuid) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
declare
  v_at timestamptz;
begin
  select scheduled_at into v_at from public.campaigns where campaign_id = p_campaign_id for update;
  if not found then
    raise exception 'unschedule_campaign: no campaign %', p_campaign_id using errcode = 'no_data_found';
  end if;
  if v_at is null then
    return false; -- not scheduled: nothing to do, nothing to record
  end if;
  update public.campaigns set scheduled_at = null where campaign_id = p_campaign_id;
  perform graphile_worker.remove_job(public.scheduled_campaign_job_key(p_campaign_id));
  perform public.record_operator_action('unschedule_campaign', null, p_campaign_id, null, null,
    jsonb_build_object('was', v_at));
  return true;
end;
$$;

--
-- Name: FUNCTION unschedule_campaign(p_campaign_id uuid); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.unschedule_campaign(p_campaign_id uuid) IS 'Cancels a draft''s schedule and removes its job (it stays a draft). False when it had none.';

--
-- Name: unsubscribe_by_token(uuid, text); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.unsubscribe_by_token(p_token_id uuid, p_method text, OUT outcome text, OUT email text) RETURNS record
    LANGUAGE plpgsql
    AS $$
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
  if t.used_at is not null and exists (
    select 1 from public.suppression_list s
     where s.email = t.email and s.reason in ('unsubscribe', 'complaint')) then
    outcome := 'already';
    return;
  end if;

  -- The suppression trigger stops this address's pending recipients in every campaign;
  -- _150_keep_strongest turns a manual or bounce_hard entry into this unsubscribe.
  insert into public.suppression_list (email, reason, source)
  values (t.email, 'unsubscribe', 'user')
  on conflict (email) do nothing;
  update public.unsubscribe_tokens set used_at = coalesce(used_at, now()) where token_id = p_token_id;

  select r.customer_id into v_customer_id from public.campaign_recipients r
   where r.campaign_id = t.campaign_id and r.email = t.email
     and r.customer_id = (select c.customer_id from public.customers c where c.email = t.email);
  if not found then
    select r.customer_id into v_customer_id from public.campaign_recipients r
     where r.campaign_id = t.campaign_id and r.email = t.email;
  end if;
  -- 'sending' is left alone: the worker is between claim and outcome, and record_send_result only
  -- records an outcome for sending/in_doubt rows. The suppression already stops anything later.
  update public.campaign_recipients r
     set recipient_status = 'unsubscribed', last_error = null
   where r.campaign_id = t.campaign_id and r.customer_id = v_customer_id
     and r.recipient_status in ('pending', 'sent', 'in_doubt', 'failed', 'suppressed');
  insert into public.email_events_op (event_type, email, campaign_id, customer_id, payload)
  values ('unsubscribe', t.email, t.campaign_id, v_customer_id,
          jsonb_build_object('source', 'unsubscribe_link', 'method', p_method,
                             'token_expired', t.expires_at <= now()));
  outcome := 'unsubscribed';
end;
$$;

--
-- Name: FUNCTION unsubscribe_by_token(p_token_id uuid, p_method text, OUT outcome text, OUT email text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.unsubscribe_by_token(p_token_id uuid, p_method text, OUT outcome text, OUT email text) IS 'Unsubscribes the token''s address, whatever the token''s age: suppression (unsubscribe, user; stronger than manual and bounce_hard), token used, the campaign''s recipient unsubscribed, an unsubscribe event. Returns unsubscribed | already | unknown; a second use changes nothing while the address stays suppressed as an opt-out.';

--
-- Name: unsubscribe_token_status(uuid); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.unsubscribe_token_status(p_token_id uuid, OUT outcome text, OUT email text) RETURNS record
    LANGUAGE sql STABLE
    AS $$
  select coalesce(s.outcome, 'unknown'), s.email
    from (select 1) one
    left join lateral (
      select case when t.used_at is not null
                   and exists (select 1 from public.suppression_list l
                                where l.email = t.email and l.reason in ('unsubscribe', 'complaint'))
                  then 'already'
                  when t.expires_at <= now() then 'expired'
                  else 'valid' end as outcome,
             t.email
        from public.unsubscribe_tokens t where t.token_id = p_token_id) s on true;
$$;

--
-- Name: FUNCTION unsubscribe_token_status(p_token_id uuid, OUT outcome text, OUT email text); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.unsubscribe_token_status(p_token_id uuid, OUT outcome text, OUT email text) IS 'What an unsubscribe link would do, changing nothing: valid | expired (older than its TTL; a POST still unsubscribes) | already | unknown, and its address.';

--
-- Name: unsuppress_email(text, text, boolean); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.unsuppress_email(p_email text, p_note text, p_force boolean DEFAULT false) RETURNS boolean
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'public', 'pg_temp'
    AS $$
declare
  v_entry public.suppression_list;
  v_opt_out record;
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
  -- The person asked not to be mailed, or reported us as spam, now or at any time before: only
  -- their own new consent undoes that, and the operator has to say so.
  if not coalesce(p_force, false) then
    if v_entry.reason in ('unsubscribe', 'complaint') then
      raise exception 'unsuppress_email: % is suppressed for %: removing that needs p_force => true '
        '(only with the person''s renewed consent)', v_entry.email, v_entry.reason
        using errcode = 'check_violation';
    end if;
    select * into v_opt_out from public.opt_out_record(v_entry.email) limit 1;
    if found then
      raise exception 'unsuppress_email: % is suppressed for %, but % was recorded for it on % (%): '
        'removing it needs p_force => true (only with the person''s renewed consent)',
        v_entry.email, v_entry.reason,
        case v_opt_out.reason when 'complaint' then 'a complaint' else 'an unsubscribe' end,
        to_char(v_opt_out.recorded_at at time zone 'utc', 'YYYY-MM-DD'), v_opt_out.recorded_in
        using errcode = 'check_violation';
    end if;
  end if;
  delete from public.suppression_list where email = v_entry.email;
  perform public.record_operator_action('unsuppress', v_entry.email, null, null, p_note,
    jsonb_build_object('reason', v_entry.reason, 'source', v_entry.source,
                       'suppressed_since', v_entry.created_at, 'forced', coalesce(p_force, false)));
  return true;
end;
$$;

--
-- Name: FUNCTION unsuppress_email(p_email text, p_note text, p_force boolean); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.unsuppress_email(p_email text, p_note text, p_force boolean) IS 'Removes an address from the suppression list, recording the removed entry and p_note in operator_actions. Needs p_force when the entry is an unsubscribe or complaint, or when one was ever recorded for the address (opt_out_record). Returns false when it was not suppressed. Recipients already suppressed stay so; future campaigns include the address again.';

--
-- Name: uuid_v7(); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.uuid_v7() RETURNS uuid
    LANGUAGE plpgsql PARALLEL SAFE
    AS $$
declare
  -- The time in 1/4096 ms: 48 bits of milliseconds, then 12 bits of its fraction (RFC 9562,
  -- 6.2 method 3: ids made in one millisecond keep their order too), from one clock reading.
  -- (A SQL function is inlined only without a FROM, so it would read the clock twice.)
  v_time bigint := (extract(epoch from clock_timestamp()) * 4096000)::bigint;
begin
  -- Milliseconds, the version (7), the fraction; then gen_random_uuid's last 8 bytes, whose
  -- variant bits are already RFC 9562's.
  return encode(int8send(((v_time >> 12) << 16) | 28672 | (v_time & 4095))
                || substring(uuid_send(gen_random_uuid()) from 9),
                'hex')::uuid;
end;
$$;

--
-- Name: FUNCTION uuid_v7(); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.uuid_v7() IS 'A UUID in RFC 9562''s version 7 layout: 48 bits of Unix time in milliseconds, 12 bits of its fraction, then 62 random bits. Ids made one after another sort in that order.';

--
-- Name: week_of_month(date); Type: FUNCTION; Schema: public; Owner: -
--

CREATE FUNCTION public.week_of_month(p_date date) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
  select (extract(day from p_date)::integer + 6) / 7;
$$;

--
-- Name: FUNCTION week_of_month(p_date date); Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON FUNCTION public.week_of_month(p_date date) IS 'The week of the month a date falls in: days 1-7 -> 1 ... 22-28 -> 4, 29-31 -> 5. For a Monday, the Monday count.';

--
-- Name: campaign_feeds; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.campaign_feeds (
    campaign_id uuid NOT NULL,
    fed_through uuid,
    feeder_job_id bigint,
    updated_at timestamp with time zone DEFAULT now() NOT NULL
);

--
-- Name: TABLE campaign_feeds; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.campaign_feeds IS 'The feeder of each campaign that was ever queued: its cursor (send jobs have been added for the pending recipients up to fed_through, customer_id order, since the campaign last entered queued) and its waiting feed_campaign job.';

--
-- Name: COLUMN campaign_feeds.campaign_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_feeds.campaign_id IS 'The campaign being fed.';

--
-- Name: COLUMN campaign_feeds.fed_through; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_feeds.fed_through IS 'The highest customer_id given a send job; null: nothing fed since the campaign entered queued.';

--
-- Name: COLUMN campaign_feeds.feeder_job_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_feeds.feeder_job_id IS 'The last feed_campaign job added for the campaign (graphile-worker job id; it may be gone).';

--
-- Name: COLUMN campaign_feeds.updated_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_feeds.updated_at IS 'When the feeder last moved the cursor.';

--
-- Name: campaign_generation_lanes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.campaign_generation_lanes (
    campaign_id uuid NOT NULL,
    lane integer NOT NULL,
    lower_bound uuid,
    upper_bound uuid,
    written_through uuid,
    done boolean DEFAULT false NOT NULL,
    CONSTRAINT campaign_generation_lanes_check CHECK ((lower_bound < upper_bound)),
    CONSTRAINT campaign_generation_lanes_lane_check CHECK ((lane >= 0))
);

--
-- Name: TABLE campaign_generation_lanes; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.campaign_generation_lanes IS 'The customer_id ranges a campaign''s generation writes at the same time, one transaction per chunk each; made with the campaign (plan_campaign_generation).';

--
-- Name: COLUMN campaign_generation_lanes.campaign_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_generation_lanes.campaign_id IS 'The campaign generated.';

--
-- Name: COLUMN campaign_generation_lanes.lane; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_generation_lanes.lane IS 'The lane''s number, from 0 in customer_id order.';

--
-- Name: COLUMN campaign_generation_lanes.lower_bound; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_generation_lanes.lower_bound IS 'First customer_id of the lane (inclusive); null for lane 0: no lower bound.';

--
-- Name: COLUMN campaign_generation_lanes.upper_bound; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_generation_lanes.upper_bound IS 'End of the lane (exclusive): the next lane''s lower bound; null for the last lane.';

--
-- Name: COLUMN campaign_generation_lanes.written_through; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_generation_lanes.written_through IS 'The lane''s cursor: the last customer_id it wrote a recipient for; null before its first.';

--
-- Name: COLUMN campaign_generation_lanes.done; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_generation_lanes.done IS 'The lane''s last chunk found fewer customers than a chunk holds: nothing is left in its range.';

--
-- Name: campaign_queue_requests; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.campaign_queue_requests (
    request_id bigint NOT NULL,
    campaign_id uuid NOT NULL,
    requested_by text NOT NULL,
    requested_at timestamp with time zone DEFAULT now() NOT NULL,
    approved_by text,
    approved_at timestamp with time zone,
    CONSTRAINT campaign_queue_requests_approved_together CHECK (((approved_by IS NULL) = (approved_at IS NULL))),
    CONSTRAINT campaign_queue_requests_second_person CHECK (((approved_by IS NULL) OR (approved_by <> requested_by)))
);

--
-- Name: TABLE campaign_queue_requests; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.campaign_queue_requests IS 'With CONSOLE_QUEUE_APPROVAL, queueing a campaign from the console is requested by one person and approved by another; approving queues it.';

--
-- Name: COLUMN campaign_queue_requests.request_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_queue_requests.request_id IS 'Primary key.';

--
-- Name: COLUMN campaign_queue_requests.campaign_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_queue_requests.campaign_id IS 'The draft to queue.';

--
-- Name: COLUMN campaign_queue_requests.requested_by; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_queue_requests.requested_by IS 'Actor who asked (console:<username>).';

--
-- Name: COLUMN campaign_queue_requests.requested_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_queue_requests.requested_at IS 'When it was asked.';

--
-- Name: COLUMN campaign_queue_requests.approved_by; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_queue_requests.approved_by IS 'Actor who approved it, never the one who asked; null while pending.';

--
-- Name: COLUMN campaign_queue_requests.approved_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_queue_requests.approved_at IS 'When it was approved.';

--
-- Name: campaign_queue_requests_request_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.campaign_queue_requests ALTER COLUMN request_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.campaign_queue_requests_request_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: campaign_recipients; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.campaign_recipients (
    campaign_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    email text NOT NULL,
    recipient_status text DEFAULT 'pending'::text NOT NULL,
    ses_message_id text,
    last_attempt_at timestamp with time zone,
    attempt_count integer DEFAULT 0 NOT NULL,
    template_data jsonb DEFAULT '{}'::jsonb NOT NULL,
    last_error text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    claimed_by text,
    CONSTRAINT campaign_recipients_attempt_count_check CHECK ((attempt_count >= 0)),
    CONSTRAINT campaign_recipients_claim_has_attempt CHECK (((recipient_status <> ALL (ARRAY['sending'::text, 'in_doubt'::text])) OR (last_attempt_at IS NOT NULL))),
    CONSTRAINT campaign_recipients_status_check CHECK ((recipient_status = ANY (ARRAY['pending'::text, 'sending'::text, 'sent'::text, 'in_doubt'::text, 'failed'::text, 'suppressed'::text, 'bounced'::text, 'complained'::text, 'unsubscribed'::text])))
);

--
-- Name: TABLE campaign_recipients; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.campaign_recipients IS 'One row per (campaign, customer): the primary key makes a second send to the same person impossible to enqueue.';

--
-- Name: COLUMN campaign_recipients.campaign_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_recipients.campaign_id IS 'The campaign.';

--
-- Name: COLUMN campaign_recipients.customer_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_recipients.customer_id IS 'The customer.';

--
-- Name: COLUMN campaign_recipients.email; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_recipients.email IS 'Address at generation time (what is sent to and suppression-checked).';

--
-- Name: COLUMN campaign_recipients.recipient_status; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_recipients.recipient_status IS 'pending|sending|sent|in_doubt|failed|suppressed|bounced|complained|unsubscribed (see README state machine).';

--
-- Name: COLUMN campaign_recipients.ses_message_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_recipients.ses_message_id IS 'MessageId SES returned; how SES events find the recipient.';

--
-- Name: COLUMN campaign_recipients.last_attempt_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_recipients.last_attempt_at IS 'When the recipient was last claimed for sending.';

--
-- Name: COLUMN campaign_recipients.attempt_count; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_recipients.attempt_count IS 'How many times the recipient was claimed for sending.';

--
-- Name: COLUMN campaign_recipients.template_data; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_recipients.template_data IS 'Values for the template (name, company, country, email, unsubscribe_url), built at generation.';

--
-- Name: COLUMN campaign_recipients.last_error; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_recipients.last_error IS 'Why the last attempt failed or was retried (not in the seed; added for support).';

--
-- Name: COLUMN campaign_recipients.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_recipients.created_at IS 'When the row was inserted; never changed (the timestamps triggers keep it).';

--
-- Name: COLUMN campaign_recipients.updated_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_recipients.updated_at IS 'When the row last changed: set by the update itself, else by the _200_timestamps trigger.';

--
-- Name: COLUMN campaign_recipients.claimed_by; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaign_recipients.claimed_by IS 'The worker process that made the last claim (worker_processes.process_id, the application_name of its connections); when that process is gone, release_dead_workers puts its claims in doubt.';

--
-- Name: campaigns; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.campaigns (
    campaign_id uuid DEFAULT gen_random_uuid() NOT NULL,
    campaign_name text NOT NULL,
    week_of_month integer NOT NULL,
    generated_date date NOT NULL,
    template_id uuid NOT NULL,
    status text DEFAULT 'draft'::text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    pause_reason text,
    generating boolean DEFAULT false NOT NULL,
    scheduled_at timestamp with time zone,
    CONSTRAINT campaigns_pause_reason_only_when_paused CHECK (((pause_reason IS NULL) OR (status = 'paused'::text))),
    CONSTRAINT campaigns_scheduled_only_when_draft CHECK (((scheduled_at IS NULL) OR (status = 'draft'::text))),
    CONSTRAINT campaigns_status_check CHECK ((status = ANY (ARRAY['draft'::text, 'queued'::text, 'sending'::text, 'done'::text, 'paused'::text]))),
    CONSTRAINT campaigns_week_of_month_check CHECK (((week_of_month >= 1) AND (week_of_month <= 4)))
);

--
-- Name: TABLE campaigns; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.campaigns IS 'One weekly send. Status: draft -> queued -> sending -> done; paused stops new sends, queued again resumes.';

--
-- Name: COLUMN campaigns.campaign_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaigns.campaign_id IS 'Primary key.';

--
-- Name: COLUMN campaigns.campaign_name; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaigns.campaign_name IS 'Human name, e.g. "week 2 of 2026-11".';

--
-- Name: COLUMN campaigns.week_of_month; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaigns.week_of_month IS 'Which weekly template line (1-4) the campaign uses.';

--
-- Name: COLUMN campaigns.generated_date; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaigns.generated_date IS 'The date it was generated for; unique with week_of_month.';

--
-- Name: COLUMN campaigns.template_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaigns.template_id IS 'The template version picked at generation time.';

--
-- Name: COLUMN campaigns.status; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaigns.status IS 'draft|queued|sending|done|paused. Setting queued (from anywhere, psql included) starts feeding its send jobs; paused removes the waiting ones.';

--
-- Name: COLUMN campaigns.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaigns.created_at IS 'When the row was inserted; never changed (the timestamps triggers keep it).';

--
-- Name: COLUMN campaigns.updated_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaigns.updated_at IS 'When the row last changed: set by the update itself, else by the _200_timestamps trigger.';

--
-- Name: COLUMN campaigns.pause_reason; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaigns.pause_reason IS 'Why the campaign is paused: the SES error that paused it, the reputation or failure-rate guard''s reason, or the operator who paused it. Null unless status is paused; cleared when it leaves paused.';

--
-- Name: COLUMN campaigns.generating; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaigns.generating IS 'True while generation is still adding recipients (in chunks, in customer_id order within each of its lanes: campaign_generation_lanes); such a campaign may send but is never done.';

--
-- Name: COLUMN campaigns.scheduled_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.campaigns.scheduled_at IS 'When a draft is to be queued (schedule_campaign; the queue_scheduled_campaign job, key queue_scheduled_campaign:<campaign_id>, runs then); null when not scheduled. Only a draft has one: leaving draft clears it.';

--
-- Name: console_sessions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.console_sessions (
    session_id text NOT NULL,
    username text NOT NULL,
    csrf_token text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    last_seen_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT console_sessions_expires_after_creation CHECK ((expires_at > created_at)),
    CONSTRAINT console_sessions_session_id_format CHECK ((session_id ~ '^[0-9a-f]{64}$'::text))
);

--
-- Name: TABLE console_sessions; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.console_sessions IS 'Console sessions. The cookie holds a random token; only its SHA-256 is stored, so a copy of this table logs nobody in. Logout deletes the row.';

--
-- Name: COLUMN console_sessions.session_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.console_sessions.session_id IS 'SHA-256 (hex) of the cookie''s token.';

--
-- Name: COLUMN console_sessions.username; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.console_sessions.username IS 'Whose session (removing the user ends it).';

--
-- Name: COLUMN console_sessions.csrf_token; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.console_sessions.csrf_token IS 'The token every POST of this session must carry (a hidden form field or a header).';

--
-- Name: COLUMN console_sessions.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.console_sessions.created_at IS 'When the user logged in.';

--
-- Name: COLUMN console_sessions.last_seen_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.console_sessions.last_seen_at IS 'The session''s last request.';

--
-- Name: COLUMN console_sessions.expires_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.console_sessions.expires_at IS 'After this the session is refused; each request moves it to 12 hours after itself (idle timeout).';

--
-- Name: console_users; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.console_users (
    username text NOT NULL,
    role text NOT NULL,
    can_queue boolean DEFAULT false NOT NULL,
    password_hash text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    disabled_at timestamp with time zone,
    CONSTRAINT console_users_password_hash_format CHECK (((password_hash IS NULL) OR (password_hash ~ '^scrypt\$[0-9]+\$[0-9]+\$[0-9]+\$[^$]+\$[^$]+$'::text))),
    CONSTRAINT console_users_role_check CHECK ((role = ANY (ARRAY['viewer'::text, 'operator'::text]))),
    CONSTRAINT console_users_username_format CHECK ((username ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'::text))
);

--
-- Name: TABLE console_users; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.console_users IS 'People who may use the browser console. Their actions are recorded in operator_actions as actor ''console:<username>''.';

--
-- Name: COLUMN console_users.username; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.console_users.username IS 'Login name: lowercase letters, digits and . _ @ -; also what a single-sign-on proxy sends.';

--
-- Name: COLUMN console_users.role; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.console_users.role IS 'viewer (support: reads everything) or operator (pause, resume, suppress, resolve, retry).';

--
-- Name: COLUMN console_users.can_queue; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.console_users.can_queue IS 'The separate right to start a campaign (queue); with CONSOLE_QUEUE_APPROVAL a second person with this right approves.';

--
-- Name: COLUMN console_users.password_hash; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.console_users.password_hash IS 'scrypt$N$r$p$salt$hash (base64url salt and hash; node''s scrypt); null: no password login (single sign-on only).';

--
-- Name: COLUMN console_users.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.console_users.created_at IS 'When the user was added.';

--
-- Name: COLUMN console_users.disabled_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.console_users.disabled_at IS 'When set, the user may not log in and their sessions are refused.';

--
-- Name: customers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.customers (
    customer_id uuid DEFAULT public.uuid_v7() NOT NULL,
    email text NOT NULL,
    name text,
    company text,
    country text,
    is_active boolean DEFAULT true NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT customers_email_format CHECK (((email ~ '^[^@\s]+@[^@\s]+$'::text) AND (length(email) <= 254))),
    CONSTRAINT customers_email_lowercase CHECK ((email = lower(email)))
);

--
-- Name: TABLE customers; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.customers IS 'People we may email. Only active customers get campaign recipients.';

--
-- Name: COLUMN customers.customer_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.customer_id IS 'Primary key. Made from the clock (uuid_v7): generation walks customers in this order, and it follows the order rows were stored in.';

--
-- Name: COLUMN customers.email; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.email IS 'Mailbox address, stored trimmed and lowercase (normalised by trigger); unique.';

--
-- Name: COLUMN customers.name; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.name IS 'Display name, available to templates as {{name}}.';

--
-- Name: COLUMN customers.company; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.company IS 'Company name, available to templates as {{company}}.';

--
-- Name: COLUMN customers.country; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.country IS 'Country, available to templates as {{country}}.';

--
-- Name: COLUMN customers.is_active; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.is_active IS 'False excludes the customer from newly generated campaigns.';

--
-- Name: COLUMN customers.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.created_at IS 'When the row was inserted; never changed (the timestamps triggers keep it).';

--
-- Name: COLUMN customers.updated_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.customers.updated_at IS 'When the row last changed: set by the update itself, else by the _200_timestamps trigger.';

--
-- Name: email_event_exports; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.email_event_exports (
    export_id uuid DEFAULT gen_random_uuid() NOT NULL,
    location text NOT NULL,
    row_count integer NOT NULL,
    bytes bigint NOT NULL,
    sha256 text NOT NULL,
    first_created_at timestamp with time zone,
    last_created_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT email_event_exports_row_count_check CHECK ((row_count >= 0)),
    CONSTRAINT email_event_exports_sha256_check CHECK ((sha256 ~ '^[0-9a-f]{64}$'::text))
);

--
-- Name: TABLE email_event_exports; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.email_event_exports IS 'One row per retention export file: where the deleted email_events_op rows went (Redshift loads them from there).';

--
-- Name: COLUMN email_event_exports.export_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_event_exports.export_id IS 'Primary key.';

--
-- Name: COLUMN email_event_exports.location; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_event_exports.location IS 'The file: an absolute local path, or s3://bucket/key.';

--
-- Name: COLUMN email_event_exports.row_count; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_event_exports.row_count IS 'Events deleted after the file was verified (all of them are in the file).';

--
-- Name: COLUMN email_event_exports.bytes; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_event_exports.bytes IS 'Size of the gzip file.';

--
-- Name: COLUMN email_event_exports.sha256; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_event_exports.sha256 IS 'SHA-256 of the gzip file, hex.';

--
-- Name: COLUMN email_event_exports.first_created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_event_exports.first_created_at IS 'Oldest created_at among the deleted events.';

--
-- Name: COLUMN email_event_exports.last_created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_event_exports.last_created_at IS 'Newest created_at among the deleted events.';

--
-- Name: COLUMN email_event_exports.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_event_exports.created_at IS 'When the events were deleted.';

--
-- Name: email_events_op; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.email_events_op (
    event_id uuid DEFAULT gen_random_uuid() NOT NULL,
    event_type text NOT NULL,
    email text,
    campaign_id uuid,
    customer_id uuid,
    ses_message_id text,
    event_time timestamp with time zone DEFAULT now() NOT NULL,
    payload jsonb DEFAULT '{}'::jsonb NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT email_events_op_event_type_check CHECK ((event_type = ANY (ARRAY['delivery'::text, 'bounce'::text, 'complaint'::text, 'open'::text, 'click'::text, 'unsubscribe'::text, 'send'::text, 'reject'::text, 'rendering_failure'::text, 'delivery_delay'::text, 'subscription'::text])))
);

--
-- Name: TABLE email_events_op; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.email_events_op IS 'Recent operational events for support and troubleshooting; full history lives in Redshift.';

--
-- Name: COLUMN email_events_op.event_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_events_op.event_id IS 'Primary key.';

--
-- Name: COLUMN email_events_op.event_type; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_events_op.event_type IS 'delivery|bounce|complaint|open|click|unsubscribe (seed) + send|reject|rendering_failure|delivery_delay|subscription.';

--
-- Name: COLUMN email_events_op.email; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_events_op.email IS 'Recipient address, when known.';

--
-- Name: COLUMN email_events_op.campaign_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_events_op.campaign_id IS 'Campaign, when the event could be matched to one.';

--
-- Name: COLUMN email_events_op.customer_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_events_op.customer_id IS 'Customer, when the event could be matched to one.';

--
-- Name: COLUMN email_events_op.ses_message_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_events_op.ses_message_id IS 'SES MessageId the event is about.';

--
-- Name: COLUMN email_events_op.event_time; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_events_op.event_time IS 'When it happened (SES timestamp).';

--
-- Name: COLUMN email_events_op.payload; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_events_op.payload IS 'The raw event as received.';

--
-- Name: COLUMN email_events_op.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.email_events_op.created_at IS 'When we stored it; retention works on this.';

--
-- Name: operator_actions; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.operator_actions (
    action_id bigint NOT NULL,
    action text NOT NULL,
    email text,
    campaign_id uuid,
    customer_id uuid,
    note text,
    details jsonb DEFAULT '{}'::jsonb NOT NULL,
    db_user text DEFAULT SESSION_USER NOT NULL,
    application_name text DEFAULT COALESCE(current_setting('application_name'::text, true), ''::text) NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    actor text DEFAULT COALESCE(NULLIF(current_setting('mailer.actor'::text, true), ''::text), (SESSION_USER)::text) NOT NULL,
    CONSTRAINT operator_actions_action_check CHECK ((action = ANY (ARRAY['activate_template'::text, 'add_template'::text, 'deactivate_template'::text, 'enqueue_generate_campaign'::text, 'pause_campaign'::text, 'queue_campaign'::text, 'resolve_in_doubt'::text, 'resume_campaign'::text, 'retry_failed'::text, 'retry_jobs'::text, 'suppress'::text, 'unsuppress'::text, 'auto_resend'::text, 'schedule_campaign'::text, 'unschedule_campaign'::text, 'delete_campaign'::text, 'test_send'::text, 'console_login'::text, 'console_login_failed'::text, 'console_logout'::text, 'console_user_add'::text, 'console_user_remove'::text, 'export_suppressions'::text, 'queue_requested'::text, 'queue_approved'::text, 'auto_pause'::text])))
);

--
-- Name: TABLE operator_actions; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.operator_actions IS 'Audit trail of operator acts (unsuppress, in-doubt decisions, job retries, campaign control), whoever made them: CLI or psql; and of the automatic decisions taken in their place (auto_resend: IN_DOUBT_RESEND_AFTER_MINUTES, details.automatic true).';

--
-- Name: COLUMN operator_actions.action_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.operator_actions.action_id IS 'Primary key, in the order the acts happened.';

--
-- Name: COLUMN operator_actions.action; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.operator_actions.action IS 'What was done (see the check constraint).';

--
-- Name: COLUMN operator_actions.email; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.operator_actions.email IS 'Address acted on, when the act is about one.';

--
-- Name: COLUMN operator_actions.campaign_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.operator_actions.campaign_id IS 'Campaign acted on, when the act is about one.';

--
-- Name: COLUMN operator_actions.customer_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.operator_actions.customer_id IS 'Customer acted on, when the act is about one.';

--
-- Name: COLUMN operator_actions.note; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.operator_actions.note IS 'Why, in the operator''s words (required for unsuppress).';

--
-- Name: COLUMN operator_actions.details; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.operator_actions.details IS 'What the act changed (previous suppression, job ids, decision, ...).';

--
-- Name: COLUMN operator_actions.db_user; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.operator_actions.db_user IS 'Database login that made the change (session_user, also under SECURITY DEFINER).';

--
-- Name: COLUMN operator_actions.application_name; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.operator_actions.application_name IS 'Client that made it: mailer-cli (with the OS user), psql, ...';

--
-- Name: COLUMN operator_actions.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.operator_actions.created_at IS 'When.';

--
-- Name: COLUMN operator_actions.actor; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.operator_actions.actor IS 'Who did it: ''console:<username>'' for a console user (the mailer.actor setting of the transaction), else the database login (session_user), as db_user.';

--
-- Name: operator_actions_action_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.operator_actions ALTER COLUMN action_id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.operator_actions_action_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

--
-- Name: send_pacer; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.send_pacer (
    id boolean DEFAULT true NOT NULL,
    next_slot timestamp with time zone NOT NULL,
    rate double precision,
    CONSTRAINT send_pacer_single_row CHECK (id)
);

--
-- Name: TABLE send_pacer; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.send_pacer IS 'Next free send slot for global SES rate pacing (one row).';

--
-- Name: COLUMN send_pacer.id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.send_pacer.id IS 'Always true: there is exactly one pacer.';

--
-- Name: COLUMN send_pacer.next_slot; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.send_pacer.next_slot IS 'The earliest time the next send may start.';

--
-- Name: COLUMN send_pacer.rate; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.send_pacer.rate IS 'Sends per second of the last reservation (the workers'' paced rate: SES_MAX_SEND_RATE or the account''s MaxSendRate, less the pacing headroom); null before the first.';

--
-- Name: sns_messages; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.sns_messages (
    sns_message_id text NOT NULL,
    topic_arn text NOT NULL,
    received_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT sns_messages_message_id_not_blank CHECK ((btrim(sns_message_id) <> ''::text))
);

--
-- Name: TABLE sns_messages; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.sns_messages IS 'Every verified SNS Notification accepted by POST /webhooks/ses, so a redelivery is processed once. Rows older than SNS''s retry window (at most hours) may be deleted.';

--
-- Name: COLUMN sns_messages.sns_message_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.sns_messages.sns_message_id IS 'SNS MessageId (the same on every redelivery).';

--
-- Name: COLUMN sns_messages.topic_arn; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.sns_messages.topic_arn IS 'Topic the notification came from (already checked against SNS_TOPIC_ARNS).';

--
-- Name: COLUMN sns_messages.received_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.sns_messages.received_at IS 'When it was first accepted; retention works on this.';

--
-- Name: suppression_list; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.suppression_list (
    email text NOT NULL,
    reason text NOT NULL,
    source text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT suppression_list_email_lowercase CHECK ((email = lower(email))),
    CONSTRAINT suppression_list_reason_check CHECK ((reason = ANY (ARRAY['unsubscribe'::text, 'bounce_hard'::text, 'complaint'::text, 'manual'::text]))),
    CONSTRAINT suppression_list_source_check CHECK ((source = ANY (ARRAY['user'::text, 'ses'::text, 'ops'::text])))
);

--
-- Name: TABLE suppression_list; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.suppression_list IS 'The authoritative compliance list: an address here is never mailed, whatever put it here.';

--
-- Name: COLUMN suppression_list.email; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.suppression_list.email IS 'Suppressed address (trimmed lowercase, normalised by trigger).';

--
-- Name: COLUMN suppression_list.reason; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.suppression_list.reason IS 'unsubscribe|bounce_hard|complaint|manual.';

--
-- Name: COLUMN suppression_list.source; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.suppression_list.source IS 'Who put it here: user (unsubscribe link), ses (events), ops (operator).';

--
-- Name: COLUMN suppression_list.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.suppression_list.created_at IS 'When the address was first suppressed; kept when a stronger reason replaces the first.';

--
-- Name: COLUMN suppression_list.updated_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.suppression_list.updated_at IS 'When the entry last changed (a stronger reason): set by the _200_timestamps trigger.';

--
-- Name: template_contents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.template_contents (
    template_id uuid NOT NULL,
    subject text NOT NULL,
    html_body text,
    text_body text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT template_contents_has_body CHECK (((html_body IS NOT NULL) OR (text_body IS NOT NULL)))
);

--
-- Name: TABLE template_contents; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.template_contents IS 'Content of provider=internal templates (Handlebars syntax, like SES templates; HTML is escaped).';

--
-- Name: COLUMN template_contents.template_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.template_contents.template_id IS 'The internal template this content belongs to.';

--
-- Name: COLUMN template_contents.subject; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.template_contents.subject IS 'Subject line template.';

--
-- Name: COLUMN template_contents.html_body; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.template_contents.html_body IS 'HTML body template; values are HTML-escaped when rendered.';

--
-- Name: COLUMN template_contents.text_body; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.template_contents.text_body IS 'Plain-text body template.';

--
-- Name: COLUMN template_contents.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.template_contents.created_at IS 'When the row was inserted; never changed (the timestamps triggers keep it).';

--
-- Name: COLUMN template_contents.updated_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.template_contents.updated_at IS 'When the row last changed: set by the update itself, else by the _200_timestamps trigger.';

--
-- Name: unsubscribe_tokens; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.unsubscribe_tokens (
    token_id uuid DEFAULT gen_random_uuid() NOT NULL,
    email text NOT NULL,
    campaign_id uuid NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    used_at timestamp with time zone,
    CONSTRAINT unsubscribe_tokens_email_lowercase CHECK ((email = lower(email)))
);

--
-- Name: TABLE unsubscribe_tokens; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.unsubscribe_tokens IS 'One per campaign recipient; its id is the secret in the List-Unsubscribe URL.';

--
-- Name: COLUMN unsubscribe_tokens.token_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.unsubscribe_tokens.token_id IS 'The unguessable token (random UUID) carried in the unsubscribe URL.';

--
-- Name: COLUMN unsubscribe_tokens.email; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.unsubscribe_tokens.email IS 'Address the token unsubscribes.';

--
-- Name: COLUMN unsubscribe_tokens.campaign_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.unsubscribe_tokens.campaign_id IS 'Campaign whose email carried the token.';

--
-- Name: COLUMN unsubscribe_tokens.expires_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.unsubscribe_tokens.expires_at IS 'After this the token is refused (configurable TTL at generation).';

--
-- Name: COLUMN unsubscribe_tokens.created_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.unsubscribe_tokens.created_at IS 'When the token was made.';

--
-- Name: COLUMN unsubscribe_tokens.used_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.unsubscribe_tokens.used_at IS 'When it was first used; reuse is harmless.';

--
-- Name: worker_processes; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.worker_processes (
    process_id text NOT NULL,
    worker_ids text[] DEFAULT '{}'::text[] NOT NULL,
    hostname text NOT NULL,
    pid integer NOT NULL,
    started_at timestamp with time zone DEFAULT now() NOT NULL,
    supervisor_pid integer
);

--
-- Name: TABLE worker_processes; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.worker_processes IS 'Live mailer worker processes; process_id is also the application_name of their connections.';

--
-- Name: COLUMN worker_processes.process_id; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.worker_processes.process_id IS 'Random id; equals pg_stat_activity.application_name while the process is connected.';

--
-- Name: COLUMN worker_processes.worker_ids; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.worker_processes.worker_ids IS 'graphile-worker pool and worker ids that may lock jobs on its behalf.';

--
-- Name: COLUMN worker_processes.hostname; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.worker_processes.hostname IS 'Host the process runs on.';

--
-- Name: COLUMN worker_processes.pid; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.worker_processes.pid IS 'OS process id of the runner (the process that holds the connections).';

--
-- Name: COLUMN worker_processes.started_at; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.worker_processes.started_at IS 'When it registered.';

--
-- Name: COLUMN worker_processes.supervisor_pid; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON COLUMN public.worker_processes.supervisor_pid IS 'OS process id of the `mailer worker` supervisor that started this runner and restarts it when it dies; null when run with --no-supervise. Signal this one to stop the worker.';

--
-- Name: campaign_feeds campaign_feeds_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.campaign_feeds
    ADD CONSTRAINT campaign_feeds_pkey PRIMARY KEY (campaign_id);

--
-- Name: campaign_generation_lanes campaign_generation_lanes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.campaign_generation_lanes
    ADD CONSTRAINT campaign_generation_lanes_pkey PRIMARY KEY (campaign_id, lane);

--
-- Name: campaign_queue_requests campaign_queue_requests_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.campaign_queue_requests
    ADD CONSTRAINT campaign_queue_requests_pkey PRIMARY KEY (request_id);

--
-- Name: campaign_recipients campaign_recipients_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.campaign_recipients
    ADD CONSTRAINT campaign_recipients_pkey PRIMARY KEY (campaign_id, customer_id);

--
-- Name: campaigns campaigns_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.campaigns
    ADD CONSTRAINT campaigns_pkey PRIMARY KEY (campaign_id);

--
-- Name: campaigns campaigns_week_date_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.campaigns
    ADD CONSTRAINT campaigns_week_date_key UNIQUE (week_of_month, generated_date);

--
-- Name: console_sessions console_sessions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.console_sessions
    ADD CONSTRAINT console_sessions_pkey PRIMARY KEY (session_id);

--
-- Name: console_users console_users_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.console_users
    ADD CONSTRAINT console_users_pkey PRIMARY KEY (username);

--
-- Name: customers customers_email_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_email_key UNIQUE (email);

--
-- Name: customers customers_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.customers
    ADD CONSTRAINT customers_pkey PRIMARY KEY (customer_id);

--
-- Name: email_event_exports email_event_exports_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.email_event_exports
    ADD CONSTRAINT email_event_exports_pkey PRIMARY KEY (export_id);

--
-- Name: email_events_op email_events_op_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.email_events_op
    ADD CONSTRAINT email_events_op_pkey PRIMARY KEY (event_id);

--
-- Name: operator_actions operator_actions_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.operator_actions
    ADD CONSTRAINT operator_actions_pkey PRIMARY KEY (action_id);

--
-- Name: send_pacer send_pacer_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.send_pacer
    ADD CONSTRAINT send_pacer_pkey PRIMARY KEY (id);

--
-- Name: sns_messages sns_messages_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.sns_messages
    ADD CONSTRAINT sns_messages_pkey PRIMARY KEY (sns_message_id);

--
-- Name: suppression_list suppression_list_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.suppression_list
    ADD CONSTRAINT suppression_list_pkey PRIMARY KEY (email);

--
-- Name: template_contents template_contents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.template_contents
    ADD CONSTRAINT template_contents_pkey PRIMARY KEY (template_id);

--
-- Name: templates templates_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.templates
    ADD CONSTRAINT templates_pkey PRIMARY KEY (template_id);

--
-- Name: templates templates_week_version_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.templates
    ADD CONSTRAINT templates_week_version_key UNIQUE (week_of_month, version);

--
-- Name: unsubscribe_tokens unsubscribe_tokens_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.unsubscribe_tokens
    ADD CONSTRAINT unsubscribe_tokens_pkey PRIMARY KEY (token_id);

--
-- Name: worker_processes worker_processes_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.worker_processes
    ADD CONSTRAINT worker_processes_pkey PRIMARY KEY (process_id);

--
-- Name: campaign_queue_requests_one_pending; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX campaign_queue_requests_one_pending ON public.campaign_queue_requests USING btree (campaign_id) WHERE (approved_by IS NULL);

--
-- Name: campaign_recipients_accepted_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX campaign_recipients_accepted_at_idx ON public.campaign_recipients USING btree (campaign_id, updated_at) WHERE ((recipient_status = 'sent'::text) AND (ses_message_id IS NOT NULL));

--
-- Name: INDEX campaign_recipients_accepted_at_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.campaign_recipients_accepted_at_idx IS 'Sent recipients of a campaign by the time their SES acceptance was recorded: the live send rate.';

--
-- Name: campaign_recipients_attention_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX campaign_recipients_attention_idx ON public.campaign_recipients USING btree (campaign_id, recipient_status, email) WHERE (recipient_status = ANY (ARRAY['failed'::text, 'in_doubt'::text]));

--
-- Name: INDEX campaign_recipients_attention_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.campaign_recipients_attention_idx IS 'Failed and in-doubt recipients of a campaign by address: the console''s paginated lists.';

--
-- Name: campaign_recipients_customer_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX campaign_recipients_customer_id_idx ON public.campaign_recipients USING btree (customer_id);

--
-- Name: campaign_recipients_in_doubt_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX campaign_recipients_in_doubt_idx ON public.campaign_recipients USING btree (last_attempt_at) WHERE (recipient_status = 'in_doubt'::text);

--
-- Name: INDEX campaign_recipients_in_doubt_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.campaign_recipients_in_doubt_idx IS 'In-doubt recipients only (few): the /metrics count and the in-doubt listings read this.';

--
-- Name: campaign_recipients_pending_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX campaign_recipients_pending_idx ON public.campaign_recipients USING btree (campaign_id, customer_id) WHERE (recipient_status = 'pending'::text);

--
-- Name: INDEX campaign_recipients_pending_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.campaign_recipients_pending_idx IS 'Pending recipients per campaign in customer_id order: jobs are enqueued forwards, the "anything pending?" probe reads it backwards.';

--
-- Name: campaign_recipients_send_errors_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX campaign_recipients_send_errors_idx ON public.campaign_recipients USING btree (campaign_id) WHERE ((last_error IS NOT NULL) AND (recipient_status = ANY (ARRAY['pending'::text, 'failed'::text, 'in_doubt'::text])));

--
-- Name: INDEX campaign_recipients_send_errors_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.campaign_recipients_send_errors_idx IS 'Unsettled recipients with an error from their last send: SES errors by kind in campaign status.';

--
-- Name: campaign_recipients_sending_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX campaign_recipients_sending_idx ON public.campaign_recipients USING btree (last_attempt_at) WHERE (recipient_status = 'sending'::text);

--
-- Name: campaign_recipients_ses_message_id_key; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX campaign_recipients_ses_message_id_key ON public.campaign_recipients USING btree (ses_message_id) WHERE (ses_message_id IS NOT NULL);

--
-- Name: campaigns_template_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX campaigns_template_id_idx ON public.campaigns USING btree (template_id);

--
-- Name: console_sessions_expires_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX console_sessions_expires_at_idx ON public.console_sessions USING btree (expires_at);

--
-- Name: console_sessions_username_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX console_sessions_username_idx ON public.console_sessions USING btree (username);

--
-- Name: email_event_exports_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX email_event_exports_created_at_idx ON public.email_event_exports USING btree (created_at);

--
-- Name: email_events_op_campaign_time_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX email_events_op_campaign_time_idx ON public.email_events_op USING btree (campaign_id, event_type, event_time);

--
-- Name: INDEX email_events_op_campaign_time_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.email_events_op_campaign_time_idx IS 'A campaign''s events of one type in time order: the report''s counts and the console''s per-minute chart.';

--
-- Name: email_events_op_created_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX email_events_op_created_at_idx ON public.email_events_op USING btree (created_at);

--
-- Name: email_events_op_customer_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX email_events_op_customer_idx ON public.email_events_op USING btree (customer_id);

--
-- Name: email_events_op_email_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX email_events_op_email_idx ON public.email_events_op USING btree (email, event_time DESC);

--
-- Name: operator_actions_action_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX operator_actions_action_idx ON public.operator_actions USING btree (action, action_id DESC);

--
-- Name: operator_actions_actor_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX operator_actions_actor_idx ON public.operator_actions USING btree (actor, action_id DESC);

--
-- Name: operator_actions_campaign_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX operator_actions_campaign_id_idx ON public.operator_actions USING btree (campaign_id) WHERE (campaign_id IS NOT NULL);

--
-- Name: operator_actions_customer_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX operator_actions_customer_id_idx ON public.operator_actions USING btree (customer_id) WHERE (customer_id IS NOT NULL);

--
-- Name: operator_actions_email_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX operator_actions_email_idx ON public.operator_actions USING btree (email, created_at DESC) WHERE (email IS NOT NULL);

--
-- Name: sns_messages_received_at_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX sns_messages_received_at_idx ON public.sns_messages USING btree (received_at);

--
-- Name: suppression_list_email_prefix_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX suppression_list_email_prefix_idx ON public.suppression_list USING btree (email text_pattern_ops);

--
-- Name: INDEX suppression_list_email_prefix_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.suppression_list_email_prefix_idx IS 'Prefix search of the suppression list (the console''s search by email).';

--
-- Name: unsubscribe_tokens_campaign_id_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX unsubscribe_tokens_campaign_id_idx ON public.unsubscribe_tokens USING btree (campaign_id);

--
-- Name: INDEX unsubscribe_tokens_campaign_id_idx; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.unsubscribe_tokens_campaign_id_idx IS 'A campaign''s tokens: ON DELETE CASCADE from campaigns, delete_draft_campaign''s count. A token per (campaign, email) holds by construction (generate_campaign_chunk writes them with the recipients).';

--
-- Name: unsubscribe_tokens_expires_at_brin; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX unsubscribe_tokens_expires_at_brin ON public.unsubscribe_tokens USING brin (expires_at);

--
-- Name: INDEX unsubscribe_tokens_expires_at_brin; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON INDEX public.unsubscribe_tokens_expires_at_brin IS 'Tokens by expiry, for expire_unsubscribe_tokens: tokens are written in expires_at order, so ranges of pages summarise them.';

--
-- Name: customers _100_lowercase_email; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _100_lowercase_email BEFORE INSERT OR UPDATE OF email ON public.customers FOR EACH ROW WHEN ((new.email IS DISTINCT FROM lower(btrim(new.email)))) EXECUTE FUNCTION public.tg__lowercase_email();

--
-- Name: suppression_list _100_lowercase_email; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _100_lowercase_email BEFORE INSERT OR UPDATE OF email ON public.suppression_list FOR EACH ROW WHEN ((new.email IS DISTINCT FROM lower(btrim(new.email)))) EXECUTE FUNCTION public.tg__lowercase_email();

--
-- Name: suppression_list _150_keep_strongest; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _150_keep_strongest BEFORE INSERT ON public.suppression_list FOR EACH ROW EXECUTE FUNCTION public.tg_suppression_list__keep_strongest();

--
-- Name: suppression_list _150_never_weaken; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _150_never_weaken BEFORE UPDATE OF reason ON public.suppression_list FOR EACH ROW WHEN ((public.suppression_strength(new.reason) < public.suppression_strength(old.reason))) EXECUTE FUNCTION public.tg_suppression_list__never_weaken();

--
-- Name: campaign_recipients _200_timestamps; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _200_timestamps BEFORE UPDATE ON public.campaign_recipients FOR EACH ROW WHEN (((new.updated_at IS DISTINCT FROM now()) OR (new.created_at IS DISTINCT FROM old.created_at))) EXECUTE FUNCTION public.tg__timestamps();

--
-- Name: campaigns _200_timestamps; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _200_timestamps BEFORE UPDATE ON public.campaigns FOR EACH ROW WHEN (((new.updated_at IS DISTINCT FROM now()) OR (new.created_at IS DISTINCT FROM old.created_at))) EXECUTE FUNCTION public.tg__timestamps();

--
-- Name: customers _200_timestamps; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _200_timestamps BEFORE UPDATE ON public.customers FOR EACH ROW WHEN (((new.updated_at IS DISTINCT FROM now()) OR (new.created_at IS DISTINCT FROM old.created_at))) EXECUTE FUNCTION public.tg__timestamps();

--
-- Name: suppression_list _200_timestamps; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _200_timestamps BEFORE UPDATE ON public.suppression_list FOR EACH ROW WHEN (((new.updated_at IS DISTINCT FROM now()) OR (new.created_at IS DISTINCT FROM old.created_at))) EXECUTE FUNCTION public.tg__timestamps();

--
-- Name: template_contents _200_timestamps; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _200_timestamps BEFORE UPDATE ON public.template_contents FOR EACH ROW WHEN (((new.updated_at IS DISTINCT FROM now()) OR (new.created_at IS DISTINCT FROM old.created_at))) EXECUTE FUNCTION public.tg__timestamps();

--
-- Name: campaign_recipients _200_timestamps_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _200_timestamps_insert BEFORE INSERT ON public.campaign_recipients FOR EACH ROW WHEN (((new.created_at IS NULL) OR (new.updated_at IS DISTINCT FROM new.created_at))) EXECUTE FUNCTION public.tg__timestamps();

--
-- Name: campaigns _200_timestamps_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _200_timestamps_insert BEFORE INSERT ON public.campaigns FOR EACH ROW WHEN (((new.created_at IS NULL) OR (new.updated_at IS DISTINCT FROM new.created_at))) EXECUTE FUNCTION public.tg__timestamps();

--
-- Name: customers _200_timestamps_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _200_timestamps_insert BEFORE INSERT ON public.customers FOR EACH ROW WHEN (((new.created_at IS NULL) OR (new.updated_at IS DISTINCT FROM new.created_at))) EXECUTE FUNCTION public.tg__timestamps();

--
-- Name: suppression_list _200_timestamps_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _200_timestamps_insert BEFORE INSERT ON public.suppression_list FOR EACH ROW WHEN (((new.created_at IS NULL) OR (new.updated_at IS DISTINCT FROM new.created_at))) EXECUTE FUNCTION public.tg__timestamps();

--
-- Name: template_contents _200_timestamps_insert; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _200_timestamps_insert BEFORE INSERT ON public.template_contents FOR EACH ROW WHEN (((new.created_at IS NULL) OR (new.updated_at IS DISTINCT FROM new.created_at))) EXECUTE FUNCTION public.tg__timestamps();

--
-- Name: campaigns _300_check_transition; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _300_check_transition BEFORE UPDATE OF status ON public.campaigns FOR EACH ROW EXECUTE FUNCTION public.tg_campaigns__check_transition();

--
-- Name: campaigns _310_leave_schedule; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _310_leave_schedule BEFORE UPDATE OF status ON public.campaigns FOR EACH ROW WHEN (((new.status IS DISTINCT FROM old.status) AND (old.scheduled_at IS NOT NULL))) EXECUTE FUNCTION public.tg_campaigns__leave_schedule();

--
-- Name: campaigns _500_dequeue_sends; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _500_dequeue_sends AFTER UPDATE OF status ON public.campaigns FOR EACH ROW WHEN (((new.status = 'paused'::text) AND (old.status IS DISTINCT FROM 'paused'::text))) EXECUTE FUNCTION public.tg_campaigns__dequeue_sends();

--
-- Name: campaigns _500_enqueue_sends; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _500_enqueue_sends AFTER INSERT OR UPDATE OF status ON public.campaigns FOR EACH ROW WHEN ((new.status = 'queued'::text)) EXECUTE FUNCTION public.tg_campaigns__enqueue_sends();

--
-- Name: suppression_list _500_suppress_pending; Type: TRIGGER; Schema: public; Owner: -
--

CREATE TRIGGER _500_suppress_pending AFTER INSERT ON public.suppression_list FOR EACH ROW EXECUTE FUNCTION public.tg_suppression_list__suppress_pending();

--
-- Name: campaign_feeds campaign_feeds_campaign_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.campaign_feeds
    ADD CONSTRAINT campaign_feeds_campaign_id_fkey FOREIGN KEY (campaign_id) REFERENCES public.campaigns(campaign_id) ON DELETE CASCADE;

--
-- Name: campaign_generation_lanes campaign_generation_lanes_campaign_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.campaign_generation_lanes
    ADD CONSTRAINT campaign_generation_lanes_campaign_id_fkey FOREIGN KEY (campaign_id) REFERENCES public.campaigns(campaign_id) ON DELETE CASCADE;

--
-- Name: campaign_queue_requests campaign_queue_requests_campaign_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.campaign_queue_requests
    ADD CONSTRAINT campaign_queue_requests_campaign_id_fkey FOREIGN KEY (campaign_id) REFERENCES public.campaigns(campaign_id) ON DELETE CASCADE;

--
-- Name: campaign_recipients campaign_recipients_campaign_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.campaign_recipients
    ADD CONSTRAINT campaign_recipients_campaign_id_fkey FOREIGN KEY (campaign_id) REFERENCES public.campaigns(campaign_id) ON DELETE CASCADE;

--
-- Name: campaign_recipients campaign_recipients_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.campaign_recipients
    ADD CONSTRAINT campaign_recipients_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers(customer_id) ON DELETE CASCADE;

--
-- Name: campaigns campaigns_template_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.campaigns
    ADD CONSTRAINT campaigns_template_id_fkey FOREIGN KEY (template_id) REFERENCES public.templates(template_id) ON DELETE RESTRICT;

--
-- Name: console_sessions console_sessions_username_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.console_sessions
    ADD CONSTRAINT console_sessions_username_fkey FOREIGN KEY (username) REFERENCES public.console_users(username) ON DELETE CASCADE;

--
-- Name: email_events_op email_events_op_campaign_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.email_events_op
    ADD CONSTRAINT email_events_op_campaign_id_fkey FOREIGN KEY (campaign_id) REFERENCES public.campaigns(campaign_id) ON DELETE SET NULL;

--
-- Name: email_events_op email_events_op_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.email_events_op
    ADD CONSTRAINT email_events_op_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers(customer_id) ON DELETE SET NULL;

--
-- Name: operator_actions operator_actions_campaign_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.operator_actions
    ADD CONSTRAINT operator_actions_campaign_id_fkey FOREIGN KEY (campaign_id) REFERENCES public.campaigns(campaign_id) ON DELETE SET NULL;

--
-- Name: operator_actions operator_actions_customer_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.operator_actions
    ADD CONSTRAINT operator_actions_customer_id_fkey FOREIGN KEY (customer_id) REFERENCES public.customers(customer_id) ON DELETE SET NULL;

--
-- Name: template_contents template_contents_template_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.template_contents
    ADD CONSTRAINT template_contents_template_id_fkey FOREIGN KEY (template_id) REFERENCES public.templates(template_id) ON DELETE CASCADE;

--
-- Name: unsubscribe_tokens unsubscribe_tokens_campaign_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.unsubscribe_tokens
    ADD CONSTRAINT unsubscribe_tokens_campaign_id_fkey FOREIGN KEY (campaign_id) REFERENCES public.campaigns(campaign_id) ON DELETE CASCADE;

--
-- Name: SCHEMA public; Type: ACL; Schema: -; Owner: -
--

GRANT USAGE ON SCHEMA public TO mailer_app;

--
-- Name: TABLE templates; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT ON TABLE public.templates TO mailer_app;
GRANT INSERT,DELETE,UPDATE ON TABLE public.templates TO mailer_operator;

--
-- Name: FUNCTION approve_campaign_queue(p_campaign_id uuid); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.approve_campaign_queue(p_campaign_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.approve_campaign_queue(p_campaign_id uuid) TO mailer_operator;

--
-- Name: FUNCTION console_user_add(p_username text, p_role text, p_can_queue boolean, p_password_hash text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.console_user_add(p_username text, p_role text, p_can_queue boolean, p_password_hash text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.console_user_add(p_username text, p_role text, p_can_queue boolean, p_password_hash text) TO mailer_operator;

--
-- Name: FUNCTION console_user_remove(p_username text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.console_user_remove(p_username text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.console_user_remove(p_username text) TO mailer_operator;

--
-- Name: FUNCTION delete_draft_campaign(p_campaign_id uuid, p_note text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.delete_draft_campaign(p_campaign_id uuid, p_note text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.delete_draft_campaign(p_campaign_id uuid, p_note text) TO mailer_operator;

--
-- Name: FUNCTION enqueue_generate_campaign(p_week integer, p_date date, p_send boolean, p_force boolean); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.enqueue_generate_campaign(p_week integer, p_date date, p_send boolean, p_force boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION public.enqueue_generate_campaign(p_week integer, p_date date, p_send boolean, p_force boolean) TO mailer_operator;

--
-- Name: FUNCTION failed_jobs(p_task text, p_limit integer); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.failed_jobs(p_task text, p_limit integer) FROM PUBLIC;
GRANT ALL ON FUNCTION public.failed_jobs(p_task text, p_limit integer) TO mailer_operator;

--
-- Name: FUNCTION job_queue_summary(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.job_queue_summary() FROM PUBLIC;
GRANT ALL ON FUNCTION public.job_queue_summary() TO mailer_operator;

--
-- Name: FUNCTION pause_campaign(p_campaign_id uuid); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.pause_campaign(p_campaign_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.pause_campaign(p_campaign_id uuid) TO mailer_operator;

--
-- Name: FUNCTION queue_campaign(p_campaign_id uuid); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.queue_campaign(p_campaign_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.queue_campaign(p_campaign_id uuid) TO mailer_operator;

--
-- Name: FUNCTION request_campaign_queue(p_campaign_id uuid); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.request_campaign_queue(p_campaign_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.request_campaign_queue(p_campaign_id uuid) TO mailer_operator;

--
-- Name: FUNCTION resolve_in_doubt(p_campaign_id uuid, p_customer_id uuid, p_decision text, p_note text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.resolve_in_doubt(p_campaign_id uuid, p_customer_id uuid, p_decision text, p_note text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.resolve_in_doubt(p_campaign_id uuid, p_customer_id uuid, p_decision text, p_note text) TO mailer_operator;

--
-- Name: FUNCTION resume_campaign(p_campaign_id uuid); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.resume_campaign(p_campaign_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.resume_campaign(p_campaign_id uuid) TO mailer_operator;

--
-- Name: FUNCTION retry_failed_jobs(p_task text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.retry_failed_jobs(p_task text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.retry_failed_jobs(p_task text) TO mailer_operator;

--
-- Name: FUNCTION retry_failed_recipients(p_campaign_id uuid, p_reason text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.retry_failed_recipients(p_campaign_id uuid, p_reason text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.retry_failed_recipients(p_campaign_id uuid, p_reason text) TO mailer_operator;

--
-- Name: FUNCTION retry_job(p_job_id bigint); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.retry_job(p_job_id bigint) FROM PUBLIC;
GRANT ALL ON FUNCTION public.retry_job(p_job_id bigint) TO mailer_operator;

--
-- Name: FUNCTION schedule_campaign(p_campaign_id uuid, p_at timestamp with time zone); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.schedule_campaign(p_campaign_id uuid, p_at timestamp with time zone) FROM PUBLIC;
GRANT ALL ON FUNCTION public.schedule_campaign(p_campaign_id uuid, p_at timestamp with time zone) TO mailer_operator;

--
-- Name: FUNCTION suppress_email(p_email text, p_reason text, p_note text); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.suppress_email(p_email text, p_reason text, p_note text) FROM PUBLIC;
GRANT ALL ON FUNCTION public.suppress_email(p_email text, p_reason text, p_note text) TO mailer_operator;

--
-- Name: FUNCTION tg_suppression_list__keep_strongest(); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.tg_suppression_list__keep_strongest() FROM PUBLIC;
GRANT ALL ON FUNCTION public.tg_suppression_list__keep_strongest() TO mailer_operator;

--
-- Name: FUNCTION unschedule_campaign(p_campaign_id uuid); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.unschedule_campaign(p_campaign_id uuid) FROM PUBLIC;
GRANT ALL ON FUNCTION public.unschedule_campaign(p_campaign_id uuid) TO mailer_operator;

--
-- Name: FUNCTION unsuppress_email(p_email text, p_note text, p_force boolean); Type: ACL; Schema: public; Owner: -
--

REVOKE ALL ON FUNCTION public.unsuppress_email(p_email text, p_note text, p_force boolean) FROM PUBLIC;
GRANT ALL ON FUNCTION public.unsuppress_email(p_email text, p_note text, p_force boolean) TO mailer_operator;

--
-- Name: TABLE campaign_feeds; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.campaign_feeds TO mailer_app;

--
-- Name: TABLE campaign_generation_lanes; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.campaign_generation_lanes TO mailer_app;

--
-- Name: TABLE campaign_queue_requests; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT ON TABLE public.campaign_queue_requests TO mailer_app;

--
-- Name: SEQUENCE campaign_queue_requests_request_id_seq; Type: ACL; Schema: public; Owner: -
--

GRANT USAGE ON SEQUENCE public.campaign_queue_requests_request_id_seq TO mailer_app;

--
-- Name: TABLE campaign_recipients; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.campaign_recipients TO mailer_app;

--
-- Name: TABLE campaigns; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.campaigns TO mailer_app;

--
-- Name: TABLE console_sessions; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.console_sessions TO mailer_app;

--
-- Name: TABLE console_users; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT ON TABLE public.console_users TO mailer_app;

--
-- Name: TABLE customers; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT ON TABLE public.customers TO mailer_app;
GRANT INSERT,DELETE,UPDATE ON TABLE public.customers TO mailer_operator;

--
-- Name: TABLE email_event_exports; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.email_event_exports TO mailer_app;

--
-- Name: TABLE email_events_op; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.email_events_op TO mailer_app;

--
-- Name: TABLE operator_actions; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT ON TABLE public.operator_actions TO mailer_app;

--
-- Name: SEQUENCE operator_actions_action_id_seq; Type: ACL; Schema: public; Owner: -
--

GRANT USAGE ON SEQUENCE public.operator_actions_action_id_seq TO mailer_app;

--
-- Name: TABLE send_pacer; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.send_pacer TO mailer_app;

--
-- Name: TABLE sns_messages; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.sns_messages TO mailer_app;

--
-- Name: TABLE suppression_list; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT ON TABLE public.suppression_list TO mailer_app;

--
-- Name: TABLE template_contents; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT ON TABLE public.template_contents TO mailer_app;
GRANT INSERT,DELETE,UPDATE ON TABLE public.template_contents TO mailer_operator;

--
-- Name: TABLE unsubscribe_tokens; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.unsubscribe_tokens TO mailer_app;

--
-- Name: TABLE worker_processes; Type: ACL; Schema: public; Owner: -
--

GRANT SELECT,INSERT,DELETE,UPDATE ON TABLE public.worker_processes TO mailer_app;

--
-- Name: DEFAULT PRIVILEGES FOR SEQUENCES; Type: DEFAULT ACL; Schema: public; Owner: -
--

ALTER DEFAULT PRIVILEGES FOR ROLE root IN SCHEMA public GRANT USAGE ON SEQUENCES  TO mailer_app;

--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: public; Owner: -
--

ALTER DEFAULT PRIVILEGES FOR ROLE root IN SCHEMA public GRANT SELECT,INSERT,DELETE,UPDATE ON TABLES  TO mailer_app;

--
-- PostgreSQL database dump complete
--

