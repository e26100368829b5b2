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
