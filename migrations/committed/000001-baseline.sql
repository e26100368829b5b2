--! Previous: -
--! Hash: sha1:194d36f5dded672ec725a61438c32547c1c02fb9
--! Message: baseline

--! split: 1-current.sql
-- mailer's schema, by topic. Each function appears once, with its current body; the reasons
-- behind non-obvious choices are in the comments. migrations/schema.sql is the same schema as
-- pg_dump prints it (generated; CI checks that it is current).
--
-- graphile-worker's schema must exist first (`mailer migrate` installs it; .gmrc's afterReset for
-- graphile-migrate's shadow database): the SQL below calls graphile_worker.add_jobs and friends.
--
-- Sections:
--    1. Roles and shared helpers            8. Campaign generation
--    2. Customers and the customer import   9. The feeder: send jobs in a window
--    3. Templates                          10. Sending: pacing, claims and outcomes
--    4. Campaigns and their recipients     11. In-doubt recipients
--    5. The audit trail                    12. Operations: the job queue and retention
--    6. SES events and SNS                 13. Privileges
--    7. Suppression and unsubscribe

--------------------------------------------------------------------------------------------------
-- 1. Roles and shared helpers

-- Who may do what in this database. Nobody but the owner is a superuser or owns anything:
--   owner            runs `mailer migrate` and owns every object (make it a dedicated
--                    non-superuser role in production, because the SECURITY DEFINER functions
--                    run with its rights);
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
-- them superuser-like attributes. The grants are in section 13; test/security/privileges.test.ts
-- runs a whole campaign as a member of mailer_app.
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

create function public.tg__timestamps() returns trigger
  language plpgsql volatile as $$
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
comment on function public.tg__timestamps() is
  'Keeps created_at as inserted and sets updated_at to now(). Its _200_timestamps triggers run '
  'only when the row would otherwise be wrong (their WHEN clauses), so an update that sets '
  'updated_at = now() itself (the send path''s) skips the function call.';

-- Addresses are normalised rather than rejected: CSV imports and hand-written inserts arrive in
-- every case, and "Ann@X.com" and "ann@x.com" are one mailbox for every provider we send to.
create function public.tg__lowercase_email() returns trigger
  language plpgsql immutable as $$
begin
  new.email := lower(btrim(new.email));
  return new;
end;
$$;
comment on function public.tg__lowercase_email() is
  'Normalises email to trimmed lowercase before the uniqueness and format checks run.';

-- Sizes of the feeder's window and of generation's chunks: the defaults below, unless the
-- database (or role) sets mailer.<name> (the tests make them small to exercise the chunking).
create function public.mailer_setting(p_name text, p_default integer) returns integer
  language sql stable
  as $$ select coalesce(nullif(current_setting('mailer.' || p_name, true), '')::integer, p_default) $$;
comment on function public.mailer_setting(text, integer) is
  'The integer setting mailer.<p_name> (ALTER DATABASE ... SET), or p_default when unset.';

--------------------------------------------------------------------------------------------------
-- 2. Customers and the customer import

create table public.customers (
  customer_id uuid primary key default gen_random_uuid(),
  email text not null,
  name text,
  company text,
  country text,
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint customers_email_key unique (email),
  constraint customers_email_lowercase check (email = lower(email)),
  constraint customers_email_format check (email ~ '^[^@\s]+@[^@\s]+$' and length(email) <= 254)
);
comment on table public.customers is 'People we may email. Only active customers get campaign recipients.';
comment on column public.customers.customer_id is 'Primary key.';
comment on column public.customers.email is 'Mailbox address, stored trimmed and lowercase (normalised by trigger); unique.';
comment on column public.customers.name is 'Display name, available to templates as {{name}}.';
comment on column public.customers.company is 'Company name, available to templates as {{company}}.';
comment on column public.customers.country is 'Country, available to templates as {{country}}.';
comment on column public.customers.is_active is 'False excludes the customer from newly generated campaigns.';
comment on column public.customers.created_at is 'When the row was inserted; never changed (the timestamps triggers keep it).';
comment on column public.customers.updated_at is 'When the row last changed: set by the update itself, else by the _200_timestamps trigger.';

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
  '(line, raw_email, name, company, country, is_active, csv_problem), analyze it, then call '
  'customer_import_summary(), apply_customer_import() and '
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

-- Row triggers that have nothing to do do not run: a plpgsql trigger costs a function call per
-- row, and the bulk statements (generation's million recipients, the customer import's upsert)
-- write rows whose defaults are already right; a WHEN clause is evaluated by the executor
-- without calling the function. Each _200_timestamps trigger carries the condition under which
-- tg__timestamps would change the row, so the result is the same whether it runs or not: on
-- insert, created_at given as null or updated_at different from created_at (the defaults, now()
-- for both, need nothing); on update, updated_at not already now(), or created_at changed. The
-- same for every table with updated_at below. _100_lowercase_email runs only for an address that
-- is not already trimmed and lowercase.
create trigger _200_timestamps before update on public.customers for each row
  when (new.updated_at is distinct from now() or new.created_at is distinct from old.created_at)
  execute function public.tg__timestamps();
create trigger _200_timestamps_insert before insert on public.customers for each row
  when (new.created_at is null or new.updated_at is distinct from new.created_at)
  execute function public.tg__timestamps();
create trigger _100_lowercase_email before insert or update of email on public.customers
  for each row when (new.email is distinct from lower(btrim(new.email)))
  execute function public.tg__lowercase_email();

--------------------------------------------------------------------------------------------------
-- 3. Templates

create table public.templates (
  template_id uuid primary key default gen_random_uuid(),
  provider text not null,
  provider_template_name text not null,
  week_of_month integer not null,
  version integer not null default 1,
  is_active boolean not null default true,
  created_at timestamptz not null default now(),
  constraint templates_provider_check check (provider in ('ses', 'internal')),
  constraint templates_week_of_month_check check (week_of_month between 1 and 4),
  constraint templates_version_check check (version >= 1),
  constraint templates_week_version_key unique (week_of_month, version)
);
comment on table public.templates is 'Email templates, one line of versions per week of the month; campaigns use the highest active version.';
comment on column public.templates.template_id is 'Primary key.';
comment on column public.templates.provider is 'ses: stored in SES and sent by TemplateName; internal: rendered by mailer from template_contents.';
comment on column public.templates.provider_template_name is 'The SES template name (provider ses) or a human name for the internal template.';
comment on column public.templates.week_of_month is 'Which weekly campaign (1-4) this template is for.';
comment on column public.templates.version is 'Version within the week; unique per week, highest active wins.';
comment on column public.templates.is_active is 'Inactive templates are never picked for new campaigns.';
comment on column public.templates.created_at is 'When the row was inserted.';

-- The seed gives templates no body columns; internal templates keep their content here, in the
-- database with everything else, one row per template version (a new version is a new row).
create table public.template_contents (
  template_id uuid primary key references public.templates (template_id) on delete cascade,
  subject text not null,
  html_body text,
  text_body text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint template_contents_has_body check (html_body is not null or text_body is not null)
);
comment on table public.template_contents is 'Content of provider=internal templates (Handlebars syntax, like SES templates; HTML is escaped).';
comment on column public.template_contents.template_id is 'The internal template this content belongs to.';
comment on column public.template_contents.subject is 'Subject line template.';
comment on column public.template_contents.html_body is 'HTML body template; values are HTML-escaped when rendered.';
comment on column public.template_contents.text_body is 'Plain-text body template.';
comment on column public.template_contents.created_at is 'When the row was inserted; never changed (the timestamps triggers keep it).';
comment on column public.template_contents.updated_at is 'When the row last changed: set by the update itself, else by the _200_timestamps trigger.';

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

create trigger _200_timestamps before update on public.template_contents for each row
  when (new.updated_at is distinct from now() or new.created_at is distinct from old.created_at)
  execute function public.tg__timestamps();
create trigger _200_timestamps_insert before insert on public.template_contents for each row
  when (new.created_at is null or new.updated_at is distinct from new.created_at)
  execute function public.tg__timestamps();

--------------------------------------------------------------------------------------------------
-- 4. Campaigns and their recipients

create table public.campaigns (
  campaign_id uuid primary key default gen_random_uuid(),
  campaign_name text not null,
  week_of_month integer not null,
  generated_date date not null,
  template_id uuid not null references public.templates (template_id) on delete restrict,
  status text not null default 'draft',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  pause_reason text,
  generating boolean not null default false,
  constraint campaigns_week_of_month_check check (week_of_month between 1 and 4),
  constraint campaigns_status_check check (status in ('draft', 'queued', 'sending', 'done', 'paused')),
  constraint campaigns_pause_reason_only_when_paused check (pause_reason is null or status = 'paused'),
  -- Generating twice for the same week and date must not make a second campaign.
  constraint campaigns_week_date_key unique (week_of_month, generated_date)
);
comment on table public.campaigns is 'One weekly send. Status: draft -> queued -> sending -> done; paused stops new sends, queued again resumes.';
comment on column public.campaigns.campaign_id is 'Primary key.';
comment on column public.campaigns.campaign_name is 'Human name, e.g. "week 2 of 2026-11".';
comment on column public.campaigns.week_of_month is 'Which weekly template line (1-4) the campaign uses.';
comment on column public.campaigns.generated_date is 'The date it was generated for; unique with week_of_month.';
comment on column public.campaigns.template_id is 'The template version picked at generation time.';
comment on column public.campaigns.status is 'draft|queued|sending|done|paused. Setting queued (from anywhere, psql included) starts feeding its send jobs; paused removes the waiting ones.';
comment on column public.campaigns.created_at is 'When the row was inserted; never changed (the timestamps triggers keep it).';
comment on column public.campaigns.updated_at is 'When the row last changed: set by the update itself, else by the _200_timestamps trigger.';
comment on column public.campaigns.pause_reason is
  'Why the campaign is paused: the SES error that paused it, the reputation or failure-rate '
  'guard''s reason, or the operator who paused it. Null unless status is paused; cleared when '
  'it leaves paused.';
comment on column public.campaigns.generating is
  'True while generation is still adding recipients (in chunks, in customer_id order); such a campaign may send but is never done.';
create index campaigns_template_id_idx on public.campaigns (template_id);

create table public.campaign_recipients (
  campaign_id uuid not null references public.campaigns (campaign_id) on delete cascade,
  customer_id uuid not null references public.customers (customer_id) on delete cascade,
  email text not null,
  recipient_status text not null default 'pending',
  ses_message_id text,
  last_attempt_at timestamptz,
  attempt_count integer not null default 0,
  template_data jsonb not null default '{}',
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  claimed_by text,
  primary key (campaign_id, customer_id),
  -- The seed's seven statuses plus two that make at-most-once sending visible:
  --   sending:  claimed and committed before SendEmail was called; the outcome is not recorded yet.
  --   in_doubt: a claim whose outcome was never recorded (crash, timeout); SES may or may not
  --             have the message. Resolved by SES Send/Delivery events or by an operator.
  constraint campaign_recipients_status_check check (recipient_status in (
    'pending', 'sending', 'sent', 'in_doubt', 'failed', 'suppressed', 'bounced', 'complained',
    'unsubscribed')),
  constraint campaign_recipients_attempt_count_check check (attempt_count >= 0),
  constraint campaign_recipients_claim_has_attempt check (
    recipient_status not in ('sending', 'in_doubt') or last_attempt_at is not null)
);
comment on table public.campaign_recipients is 'One row per (campaign, customer): the primary key makes a second send to the same person impossible to enqueue.';
comment on column public.campaign_recipients.campaign_id is 'The campaign.';
comment on column public.campaign_recipients.customer_id is 'The customer.';
comment on column public.campaign_recipients.email is 'Address at generation time (what is sent to and suppression-checked).';
comment on column public.campaign_recipients.recipient_status is 'pending|sending|sent|in_doubt|failed|suppressed|bounced|complained|unsubscribed (see README state machine).';
comment on column public.campaign_recipients.ses_message_id is 'MessageId SES returned; how SES events find the recipient.';
comment on column public.campaign_recipients.last_attempt_at is 'When the recipient was last claimed for sending.';
comment on column public.campaign_recipients.attempt_count is 'How many times the recipient was claimed for sending.';
comment on column public.campaign_recipients.template_data is 'Values for the template (name, company, country, email, unsubscribe_url), built at generation.';
comment on column public.campaign_recipients.last_error is 'Why the last attempt failed or was retried (not in the seed; added for support).';
comment on column public.campaign_recipients.created_at is 'When the row was inserted; never changed (the timestamps triggers keep it).';
comment on column public.campaign_recipients.updated_at is 'When the row last changed: set by the update itself, else by the _200_timestamps trigger.';
comment on column public.campaign_recipients.claimed_by is
  'The worker process that made the last claim (worker_processes.process_id, the application_name '
  'of its connections); when that process is gone, release_dead_workers puts its claims in doubt.';
-- customers show / FK on delete.
create index campaign_recipients_customer_id_idx on public.campaign_recipients (customer_id);
-- A new suppression stops that address's pending recipients in every campaign.
create index campaign_recipients_pending_email_idx on public.campaign_recipients (email)
  where recipient_status = 'pending';
-- SES events find their recipient by message id.
create unique index campaign_recipients_ses_message_id_key on public.campaign_recipients (ses_message_id)
  where ses_message_id is not null;
-- The lease sweep looks for stale claims only.
create index campaign_recipients_sending_idx on public.campaign_recipients (last_attempt_at)
  where recipient_status = 'sending';
create index campaign_recipients_pending_idx
  on public.campaign_recipients (campaign_id, customer_id)
  where recipient_status = 'pending';
comment on index public.campaign_recipients_pending_idx is
  'Pending recipients per campaign in customer_id order: jobs are enqueued forwards, the "anything '
  'pending?" probe reads it backwards.';
-- /metrics counts the in-doubt recipients on every scrape; over all campaigns ever sent that
-- would be a scan of millions of rows, while in-doubt recipients are few.
create index campaign_recipients_in_doubt_idx
  on public.campaign_recipients (last_attempt_at)
  where recipient_status = 'in_doubt';
comment on index public.campaign_recipients_in_doubt_idx is
  'In-doubt recipients only (few): the /metrics count and the in-doubt listings read this.';

-- The reason belongs to the pause: leaving paused (resume, or done) clears it.
create function public.tg_campaigns__check_transition() returns trigger
  language plpgsql volatile
  as $$
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
comment on function public.tg_campaigns__check_transition() is
  'Refuses status changes that would lose or skip recipients (see README, campaign states).';

-- Not SECURITY DEFINER itself: it runs with the rights of the wrapper that calls it. An
-- operator's pause records who paused it, so `campaign status` never shows a bare "paused".
create function public.set_campaign_status(p_campaign_id uuid, p_action text,
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
comment on function public.set_campaign_status(uuid, text, text[], text) is
  'Shared body of queue/pause/resume_campaign: moves a campaign from one of p_from to p_to and records it.';

create function public.queue_campaign(p_campaign_id uuid) returns text
  language sql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
  select public.set_campaign_status(p_campaign_id, 'queue_campaign', array['draft'], 'queued');
$$;
comment on function public.queue_campaign(uuid) is
  'Starts sending a draft campaign: queued, its first send jobs added in the same transaction and '
  'its feeder queued for the rest. Returns the new status (done when nothing is left to send). '
  'No-op when already queued or sending.';

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
  'Resumes a paused campaign: queued again, its pending recipients fed send jobs again from the '
  'start (job keys keep one job per recipient). Returns the new status.';

-- The worker's automatic pauses (failure-rate guard); the reputation guard and the outcome batch
-- pause in SQL themselves. Returns whether this call paused the campaign.
create function public.auto_pause_campaign(p_campaign_id uuid, p_reason text)
  returns boolean language sql volatile as $$
  update public.campaigns set status = 'paused', pause_reason = p_reason
   where campaign_id = p_campaign_id and status in ('queued', 'sending')
  returning true;
$$;
comment on function public.auto_pause_campaign(uuid, text) is
  'Pauses a queued or sending campaign for p_reason (shown by campaign status/list); true when '
  'this call paused it.';

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

-- Run after the outcome has committed: the last recipient's check then sees every other outcome.
-- While anything is pending the answer is "not yet", without a lock: whoever finishes the pending
-- recipient checks again later. `sending` rows are few (the sends in flight), found through
-- campaign_recipients_sending_idx. plpgsql rather than sql, so its plans are kept per session.
create function public.finish_campaign_if_complete(p_campaign_id uuid) returns boolean
  language plpgsql volatile
  as $$
begin
  if (select r.customer_id from public.campaign_recipients r
       where r.campaign_id = p_campaign_id and r.recipient_status = 'pending'
       order by r.campaign_id desc, r.customer_id desc limit 1) is not null then
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
comment on function public.finish_campaign_if_complete(uuid) is
  'Marks a queued/sending campaign done when its generation is finished and no recipient is pending or sending; waits for outcomes being recorded (record_send_outcomes) so that the last of them is never missed.';

-- An operator queues a campaign's failed recipients again (each gets one more attempt per call).
-- A done campaign goes back to queued (its enqueue trigger queues them); a queued or sending one
-- gets a job per recipient now; a paused one keeps them pending until it is resumed.
create function public.retry_failed_recipients(p_campaign_id uuid,
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

create trigger _300_check_transition before update of status on public.campaigns
  for each row execute function public.tg_campaigns__check_transition();
create trigger _200_timestamps before update on public.campaigns for each row
  when (new.updated_at is distinct from now() or new.created_at is distinct from old.created_at)
  execute function public.tg__timestamps();
create trigger _200_timestamps_insert before insert on public.campaigns for each row
  when (new.created_at is null or new.updated_at is distinct from new.created_at)
  execute function public.tg__timestamps();
create trigger _200_timestamps before update on public.campaign_recipients for each row
  when (new.updated_at is distinct from now() or new.created_at is distinct from old.created_at)
  execute function public.tg__timestamps();
create trigger _200_timestamps_insert before insert on public.campaign_recipients for each row
  when (new.created_at is null or new.updated_at is distinct from new.created_at)
  execute function public.tg__timestamps();

--------------------------------------------------------------------------------------------------
-- 5. The audit trail

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
  -- auto_resend is the one automatic decision recorded like an operator's (auto_resend_in_doubt).
  constraint operator_actions_action_check check (action in (
    'activate_template', 'add_template', 'auto_resend', 'deactivate_template',
    'enqueue_generate_campaign', 'pause_campaign', 'queue_campaign', 'resolve_in_doubt',
    'resume_campaign', 'retry_failed', 'retry_jobs', 'suppress', 'unsuppress'))
);
comment on table public.operator_actions is
  'Audit trail of operator acts (unsuppress, in-doubt decisions, job retries, campaign control), '
  'whoever made them: CLI or psql; and of the automatic decisions taken in their place '
  '(auto_resend: IN_DOUBT_RESEND_AFTER_MINUTES, details.automatic true).';
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
-- 6. SES events and SNS

create table public.email_events_op (
  event_id uuid primary key default gen_random_uuid(),
  event_type text not null,
  email text,
  campaign_id uuid references public.campaigns (campaign_id) on delete set null,
  customer_id uuid references public.customers (customer_id) on delete set null,
  ses_message_id text,
  event_time timestamptz not null default now(),
  payload jsonb not null default '{}',
  created_at timestamptz not null default now(),
  -- The seed's six types plus what SES publishes that support needs to see.
  constraint email_events_op_event_type_check check (event_type in (
    'delivery', 'bounce', 'complaint', 'open', 'click', 'unsubscribe',
    'send', 'reject', 'rendering_failure', 'delivery_delay', 'subscription'))
);
comment on table public.email_events_op is 'Recent operational events for support and troubleshooting; full history lives in Redshift.';
comment on column public.email_events_op.event_id is 'Primary key.';
comment on column public.email_events_op.event_type is 'delivery|bounce|complaint|open|click|unsubscribe (seed) + send|reject|rendering_failure|delivery_delay|subscription.';
comment on column public.email_events_op.email is 'Recipient address, when known.';
comment on column public.email_events_op.campaign_id is 'Campaign, when the event could be matched to one.';
comment on column public.email_events_op.customer_id is 'Customer, when the event could be matched to one.';
comment on column public.email_events_op.ses_message_id is 'SES MessageId the event is about.';
comment on column public.email_events_op.event_time is 'When it happened (SES timestamp).';
comment on column public.email_events_op.payload is 'The raw event as received.';
comment on column public.email_events_op.created_at is 'When we stored it; retention works on this.';
create index email_events_op_email_idx on public.email_events_op (email, event_time desc);
create index email_events_op_campaign_idx on public.email_events_op (campaign_id, event_type);
create index email_events_op_customer_idx on public.email_events_op (customer_id);
create index email_events_op_created_at_idx on public.email_events_op (created_at);

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

-- The webhook stores the notifications that arrive at the same moment together: one statement,
-- one commit and one NOTIFY for many requests (src/http/ses-webhook.ts). One commit per request
-- serialised the webhook on the commit lock that add_job's NOTIFY takes.
create function public.record_sns_notifications(
  p_message_ids text[], p_topic_arns text[], p_envelopes json[]
) returns table (ord integer, fresh boolean)
  language plpgsql volatile as $$
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
comment on function public.record_sns_notifications(text[], text[], json[]) is
  'Remembers each verified SNS Notification and enqueues one process_ses_event per new '
  'MessageId, in one statement for all the notifications that arrived together. Returns '
  '(ord, fresh) per input, ord 1-based; fresh is false for a MessageId seen before (or earlier '
  'in the same batch).';

-- sns_messages only has to outlive SNS's redelivery window (hours); a week is generous.
create function public.prune_sns_messages(p_keep interval) returns integer
  language sql volatile as $$
  with gone as (
    delete from public.sns_messages where received_at < now() - p_keep returning 1
  )
  select count(*)::integer from gone;
$$;
comment on function public.prune_sns_messages(interval) is
  'Forgets SNS MessageIds received longer ago than p_keep (redelivery dedupe only needs hours).';

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

-- The reputation guard: pauses a campaign whose bounces or complaints cross a limit, and records
-- why on the campaign (pause_reason), where `mailer campaign status` shows it.
create function public.check_campaign_reputation(
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
comment on function public.check_campaign_reputation(uuid, numeric, numeric, integer) is
  'Pauses a queued/sending campaign whose permanent-bounce or complaint rate over its sent '
  'recipients (ses_message_id set) is above the given fraction, once p_min_sent were sent. '
  'Returns why it paused it, or null.';

-- The recipient an event is about is the one its tags name: the recipient the message was sent
-- to. The message id is only the fallback, for identity notifications (no tags): looked up first,
-- a message id wrongly held by another campaign's recipient would apply the event to that one. A
-- message id is recorded only when no other recipient holds it, so such an event is never
-- refused by the unique index.
create function public.apply_ses_event(
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
comment on function public.apply_ses_event(jsonb, numeric, numeric, integer) is
  'Records one SES event in email_events_op and applies its effect: permanent bounce -> suppression '
  '(bounce_hard) + bounced; complaint -> suppression (complaint) + complained; send/delivery -> '
  'sending/in_doubt become sent; reject/rendering failure -> failed; subscription unsubscribeAll -> '
  'suppression (unsubscribe) + unsubscribed; others are recorded only. Runs the reputation guard '
  'after bounces and complaints; paused_reason says why it paused the campaign.';

--------------------------------------------------------------------------------------------------
-- 7. Suppression and unsubscribe

create table public.suppression_list (
  email text primary key,
  reason text not null,
  source text not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint suppression_list_email_lowercase check (email = lower(email)),
  constraint suppression_list_reason_check check (reason in ('unsubscribe', 'bounce_hard', 'complaint', 'manual')),
  constraint suppression_list_source_check check (source in ('user', 'ses', 'ops'))
);
comment on table public.suppression_list is 'The authoritative compliance list: an address here is never mailed, whatever put it here.';
comment on column public.suppression_list.email is 'Suppressed address (trimmed lowercase, normalised by trigger).';
comment on column public.suppression_list.reason is 'unsubscribe|bounce_hard|complaint|manual.';
comment on column public.suppression_list.source is 'Who put it here: user (unsubscribe link), ses (events), ops (operator).';
comment on column public.suppression_list.created_at is 'When the address was first suppressed; kept when a stronger reason replaces the first.';
comment on column public.suppression_list.updated_at is 'When the entry last changed (a stronger reason): set by the _200_timestamps trigger.';

create function public.suppression_strength(p_reason text) returns integer
  language sql immutable parallel safe as $$
  select case p_reason when 'complaint' then 4 when 'unsubscribe' then 3
                       when 'bounce_hard' then 2 when 'manual' then 1 end;
$$;
comment on function public.suppression_strength(text) is
  'How binding a suppression reason is: complaint 4 > unsubscribe 3 > bounce_hard 2 > manual 1. The stronger reason always wins.';

create function public.tg_suppression_list__suppress_pending() returns trigger
  language plpgsql volatile as $$
begin
  update public.campaign_recipients
     set recipient_status = 'suppressed', last_error = 'suppressed: ' || new.reason
   where email = new.email and recipient_status = 'pending';
  return null;
end;
$$;
comment on function public.tg_suppression_list__suppress_pending() is
  'A new suppression stops the address''s still-pending recipients in every campaign.';

-- SECURITY DEFINER: mailer_app may add to the list but has no UPDATE on it (section 13);
-- strengthening an entry is the one change it may cause, and only through this trigger. A trigger
-- function needs no EXECUTE grant to fire, so mailer_app still cannot call it.
create function public.tg_suppression_list__keep_strongest() returns trigger
  language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
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
comment on function public.tg_suppression_list__keep_strongest() is
  'Before a suppression is inserted: an existing entry for the address with a weaker reason takes the new reason and source (created_at kept, updated_at moved); the insert then conflicts with it.';

create function public.tg_suppression_list__never_weaken() returns trigger
  language plpgsql volatile as $$
begin
  raise exception 'suppression_list: % is suppressed for %; a weaker reason (%) never replaces it',
    old.email, old.reason, new.reason
    using errcode = 'check_violation',
          hint = 'lift it with unsuppress_email (recorded), then suppress_email with the new reason';
end;
$$;
comment on function public.tg_suppression_list__never_weaken() is
  'Refuses an update that would replace a suppression reason by a weaker one.';

-- What an address's own opt-outs left behind, newest first. The suppression entry only holds the
-- strongest reason since it was created, and unsuppress_email deletes it; operator_actions is the
-- durable record (append-only, never pruned; every lift records the reason it removed and every
-- operator suppression the reason it gave). email_events_op holds the person's own acts (the
-- unsubscribe link, complaints, SES subscription opt-outs) for EVENTS_RETENTION_DAYS.
create function public.opt_out_record(p_email text)
  returns table(reason text, recorded_at timestamptz, recorded_in text)
  language sql stable as $$
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
comment on function public.opt_out_record(text) is
  'Every unsubscribe or complaint recorded for an address, newest first: its own acts in email_events_op (within retention) and operator suppressions and lifts in operator_actions (kept for good). unsuppress_email needs force when there is any.';

create function public.suppress_email(p_email text, p_reason text default 'manual',
                                                 p_note text default null)
  returns boolean language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
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
comment on function public.suppress_email(text, text, text) is
  'Suppresses an address (source ops, reason manual unless given); its pending recipients in every campaign become suppressed. An entry with a weaker reason takes the new one (complaint > unsubscribe > bounce_hard > manual). Returns false when it was already suppressed at least as strongly (the entry is kept as it was).';

create function public.unsuppress_email(p_email text, p_note text,
                                                   p_force boolean default false)
  returns boolean language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
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
comment on function public.unsuppress_email(text, text, boolean) is
  'Removes an address from the suppression list, recording the removed entry and p_note in operator_actions. Needs p_force when the entry is an unsubscribe or complaint, or when one was ever recorded for the address (opt_out_record). Returns false when it was not suppressed. Recipients already suppressed stay so; future campaigns include the address again.';

create table public.unsubscribe_tokens (
  -- gen_random_uuid() draws 122 bits from the server's strong random source: unguessable.
  token_id uuid primary key default gen_random_uuid(),
  email text not null,
  campaign_id uuid not null references public.campaigns (campaign_id) on delete cascade,
  expires_at timestamptz not null,
  created_at timestamptz not null default now(),
  used_at timestamptz,
  constraint unsubscribe_tokens_campaign_email_key unique (campaign_id, email),
  constraint unsubscribe_tokens_email_lowercase check (email = lower(email))
);
comment on table public.unsubscribe_tokens is 'One per campaign recipient; its id is the secret in the List-Unsubscribe URL.';
comment on column public.unsubscribe_tokens.token_id is 'The unguessable token (random UUID) carried in the unsubscribe URL.';
comment on column public.unsubscribe_tokens.email is 'Address the token unsubscribes.';
comment on column public.unsubscribe_tokens.campaign_id is 'Campaign whose email carried the token.';
comment on column public.unsubscribe_tokens.expires_at is 'After this the token is refused (configurable TTL at generation).';
comment on column public.unsubscribe_tokens.created_at is 'When the token was made.';
comment on column public.unsubscribe_tokens.used_at is 'When it was first used; reuse is harmless.';
create index unsubscribe_tokens_expires_at_idx on public.unsubscribe_tokens (expires_at);

create function public.unsubscribe_token_status(p_token_id uuid, out outcome text,
                                                           out email text)
  language sql stable as $$
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
comment on function public.unsubscribe_token_status(uuid) is
  'What an unsubscribe link would do, changing nothing: valid | expired (older than its TTL; a POST still unsubscribes) | already | unknown, and its address.';

-- p_method says how the user confirmed (one_click: RFC 8058 POST from the mail client; form: our
-- confirmation page); it is kept in the event for support.
create function public.unsubscribe_by_token(p_token_id uuid, p_method text,
                                                       out outcome text, out email text)
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
          jsonb_build_object('source', 'unsubscribe_link', 'method', p_method,
                             'token_expired', t.expires_at <= now()));
  outcome := 'unsubscribed';
end;
$$;
comment on function public.unsubscribe_by_token(uuid, text) is
  'Unsubscribes the token''s address, whatever the token''s age: suppression (unsubscribe, user; stronger than manual and bounce_hard), token used, the campaign''s recipient unsubscribed, an unsubscribe event. Returns unsubscribed | already | unknown; a second use changes nothing while the address stays suppressed as an opt-out.';

-- A one-click POST from an old email must still unsubscribe, and a token that no longer exists
-- cannot be honoured: a token whose email may be in an inbox is never deleted (it lives as long
-- as its campaign, like campaign_recipients). Only tokens no email carried are deleted: those of
-- recipients suppressed at generation (final: never sent) and those whose recipient is gone
-- (customer deleted). Each token is looked at during the 7 days after its grace ends (the task
-- runs daily), not on every run for ever: a token kept then is kept for good.
create function public.expire_unsubscribe_tokens(p_grace interval, p_limit integer)
  returns integer language sql volatile as $$
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
     order by t.expires_at
     limit p_limit
       for update of t skip locked
  ), deleted as (
    delete from public.unsubscribe_tokens t using doomed d where t.token_id = d.token_id
    returning 1
  )
  select count(*)::integer from deleted;
$$;
comment on function public.expire_unsubscribe_tokens(interval, integer) is
  'Deletes up to p_limit unsubscribe tokens that expired between p_grace and p_grace + 7 days ago and that no email carried (recipient suppressed at generation, or gone); returns how many. Tokens of mail that went out are kept, so their one-click POST keeps working. Call until it returns less than p_limit.';

create trigger _500_suppress_pending after insert on public.suppression_list
  for each row execute function public.tg_suppression_list__suppress_pending();
create trigger _200_timestamps before update on public.suppression_list for each row
  when (new.updated_at is distinct from now() or new.created_at is distinct from old.created_at)
  execute function public.tg__timestamps();
create trigger _200_timestamps_insert before insert on public.suppression_list for each row
  when (new.created_at is null or new.updated_at is distinct from new.created_at)
  execute function public.tg__timestamps();
create trigger _100_lowercase_email before insert or update of email on public.suppression_list
  for each row when (new.email is distinct from lower(btrim(new.email)))
  execute function public.tg__lowercase_email();
-- After _100_lowercase_email, so the address is compared normalised.
create trigger _150_keep_strongest before insert on public.suppression_list
  for each row execute function public.tg_suppression_list__keep_strongest();
create trigger _150_never_weaken before update of reason on public.suppression_list
  for each row
  when (public.suppression_strength(new.reason) < public.suppression_strength(old.reason))
  execute function public.tg_suppression_list__never_weaken();

--------------------------------------------------------------------------------------------------
-- 8. Campaign generation

create function public.week_of_month(p_date date) returns integer
  language sql immutable parallel safe as $$
  select (extract(day from p_date)::integer + 6) / 7;
$$;
comment on function public.week_of_month(date) is
  'The week of the month a date falls in: days 1-7 -> 1 ... 22-28 -> 4, 29-31 -> 5. For a Monday, the Monday count.';

create function public.check_campaign_identity(p_caller text, p_week integer,
                                                          p_date date, p_force boolean)
  returns void language plpgsql stable as $$
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
comment on function public.check_campaign_identity(text, integer, date, boolean) is
  'For p_caller''s message: refuses (unless p_force) a campaign whose date is not in its week of the month (invalid_parameter_value), or a second campaign for a (month, week) that has one on another date (unique_violation).';

-- Serialises the chunks of one campaign's generation (a retried job and the one it replaced).
create function public.generation_lock_key(p_campaign_id uuid) returns bigint
  language sql immutable
  as $$ select (7303::bigint << 32) | (hashtext(p_campaign_id::text)::bigint & 4294967295) $$;
comment on function public.generation_lock_key(uuid) is
  'The advisory lock key that serialises the generation chunks of a campaign.';

create function public.begin_campaign_generation(p_week_of_month integer,
  p_generated_date date, p_send boolean, p_token_ttl interval, p_public_url text,
  p_force boolean default false, p_first_chunk integer default null) returns uuid
  language plpgsql volatile
  as $$
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

  -- A first chunk before queueing: the queue trigger feeds it in this transaction, so sending
  -- starts when this commits.
  perform public.generate_campaign_chunk(v_campaign_id, p_token_ttl, p_public_url,
    coalesce(p_first_chunk, public.mailer_setting('generation_first_chunk', 2000)));
  if p_send then
    update public.campaigns set status = 'queued' where campaign_id = v_campaign_id;
  end if;
  return v_campaign_id;
end;
$$;
comment on function public.begin_campaign_generation(integer, date, boolean, interval, text, boolean, integer) is
  'Creates the week''s campaign (generating) with its first p_first_chunk recipients and queues it when p_send; generate_campaign_chunk adds the rest. Returns the existing campaign for a week and date that has one (generated, or still generating). Same checks as generate_campaign.';

create function public.generate_campaign_chunk(p_campaign_id uuid, p_token_ttl interval,
  p_public_url text, p_limit integer default null) returns integer
  language plpgsql volatile
  as $$
declare
  v_after uuid;
  v_count integer;
  v_limit integer := coalesce(p_limit, public.mailer_setting('generation_chunk', 50000));
begin
  perform pg_advisory_xact_lock(public.generation_lock_key(p_campaign_id));
  if not coalesce((select c.generating from public.campaigns c
                    where c.campaign_id = p_campaign_id), false) then
    return 0;
  end if;
  -- The cursor is the last recipient written (the primary key read backwards).
  select r.customer_id into v_after from public.campaign_recipients r
   where r.campaign_id = p_campaign_id
   order by r.campaign_id desc, r.customer_id desc limit 1;

  -- Token ids drawn here, so recipients need no join back to the tokens by email.
  with chunk as materialized (
    select c.customer_id, c.email, c.name, c.company, c.country, gen_random_uuid() as token_id
      from public.customers c
     where c.is_active
       and c.customer_id > coalesce(v_after, '00000000-0000-0000-0000-000000000000')
     order by c.customer_id
     limit v_limit
  ), tokens as (
    insert into public.unsubscribe_tokens (token_id, email, campaign_id, expires_at)
    select k.token_id, k.email, p_campaign_id, now() + p_token_ttl from chunk k
  )
  insert into public.campaign_recipients (campaign_id, customer_id, email, recipient_status, template_data)
  select p_campaign_id, k.customer_id, k.email,
         case when s.email is null then 'pending' else 'suppressed' end,
         jsonb_build_object(
           'name', k.name, 'company', k.company, 'country', k.country, 'email', k.email,
           'unsubscribe_url', rtrim(p_public_url, '/') || '/unsubscribe/' || k.token_id)
    from chunk k
    left join public.suppression_list s on s.email = k.email
   -- In primary key order: the indexes fill left to right.
   order by k.customer_id;
  get diagnostics v_count = row_count;

  if v_count < v_limit then
    update public.campaigns set generating = false where campaign_id = p_campaign_id;
    -- Every recipient may have been sent (or suppressed) before generation ended.
    perform public.finish_campaign_if_complete(p_campaign_id);
  end if;
  return v_count;
end;
$$;
comment on function public.generate_campaign_chunk(uuid, interval, text, integer) is
  'Adds the next p_limit (default mailer.generation_chunk, else 50,000) active customers (customer_id order) to a generating campaign, each with its unsubscribe token; the chunk that finds fewer ends the generation (generating = false) and finishes the campaign if nothing is left to send. Returns the recipients added; 0 for a campaign not generating.';

create function public.generate_campaign(p_week_of_month integer, p_generated_date date,
  p_send boolean, p_token_ttl interval, p_public_url text, p_force boolean default false)
  returns uuid
  language plpgsql volatile
  as $$
declare
  v_campaign_id uuid;
begin
  v_campaign_id := public.begin_campaign_generation(p_week_of_month, p_generated_date, p_send,
    p_token_ttl, p_public_url, p_force);
  -- The whole campaign in this one transaction (psql, tests); the generate_campaign task commits
  -- chunk by chunk instead (src/queries/campaigns.ts).
  while public.generate_campaign_chunk(v_campaign_id, p_token_ttl, p_public_url) > 0 loop
  end loop;
  return v_campaign_id;
end;
$$;
comment on function public.generate_campaign(integer, date, boolean, interval, text, boolean) is
  'Creates the week''s campaign with one recipient and one unsubscribe token per active customer; suppressed addresses are recorded as suppressed. Queues it when p_send. Idempotent per week and date. Unless p_force: the date must be in the week of the month (week_of_month), and a (month, week) with a campaign on another date gets no second one.';

create function public.enqueue_generate_campaign(p_week integer, p_date date default null,
                                                            p_send boolean default true,
                                                            p_force boolean default false)
  returns bigint language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp as $$
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
comment on function public.enqueue_generate_campaign(integer, date, boolean, boolean) is
  'Adds a generate_campaign job (week 1-4, date default today UTC, send default true, force default false); returns its job id. Refuses at once a date outside the week or a second campaign for the (month, week), unless p_force. Generation is idempotent per week and date.';

--------------------------------------------------------------------------------------------------
-- 9. The feeder: send jobs in a window

create table public.campaign_feeds (
  campaign_id uuid primary key references public.campaigns (campaign_id) on delete cascade,
  fed_through uuid,
  feeder_job_id bigint,
  updated_at timestamptz not null default now()
);
comment on table public.campaign_feeds is
  'The feeder of each campaign that was ever queued: its cursor (send jobs have been added for the pending recipients up to fed_through, customer_id order, since the campaign last entered queued) and its waiting feed_campaign job.';
comment on column public.campaign_feeds.campaign_id is 'The campaign being fed.';
comment on column public.campaign_feeds.fed_through is 'The highest customer_id given a send job; null: nothing fed since the campaign entered queued.';
comment on column public.campaign_feeds.feeder_job_id is 'The last feed_campaign job added for the campaign (graphile-worker job id; it may be gone).';
comment on column public.campaign_feeds.updated_at is 'When the feeder last moved the cursor.';

-- The lock every change of a campaign's feeding takes: feeders try it (and leave when it is
-- taken), status changes wait for it, so a feeder never writes a cursor from before a resume.
create function public.feed_lock_key(p_campaign_id uuid) returns bigint
  language sql immutable
  as $$ select (7302::bigint << 32) | (hashtext(p_campaign_id::text)::bigint & 4294967295) $$;
comment on function public.feed_lock_key(uuid) is
  'The advisory lock key that serialises feeding a campaign with its status changes.';

create function public.ensure_campaign_feeder(p_campaign_id uuid,
  p_delay interval default '0 seconds') returns void
  language plpgsql volatile
  as $$
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
comment on function public.ensure_campaign_feeder(uuid, interval) is
  'Adds a feed_campaign job for the campaign, to run after p_delay, unless its last one is still waiting. The caller holds feed_lock_key(campaign).';

create function public.feed_campaign_sends(p_campaign_id uuid,
  p_window integer default null, p_batch integer default null) returns integer
  language plpgsql volatile
  as $$
declare
  v_status text;
  v_generating boolean;
  v_fed uuid;
  v_first boolean;
  v_waiting integer;
  v_ids uuid[];
  v_more boolean;
  v_window integer := coalesce(p_window, public.mailer_setting('feed_window', 20000));
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
comment on function public.feed_campaign_sends(uuid, integer, integer) is
  'The feeder: tops a queued or sending campaign up to p_window (default mailer.feed_window, else 20,000) waiting send jobs (at most p_batch, default mailer.feed_batch, else 10,000, per call, in customer_id order, job key per recipient) and reschedules its feed_campaign job while anything is left to feed. Returns the jobs added; null when the campaign is not sendable (the feeder stops).';

create function public.tg_campaigns__enqueue_sends() returns trigger
  language plpgsql volatile
  as $$
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
comment on function public.tg_campaigns__enqueue_sends() is
  'On entering queued: feeds the first batch of send jobs in the same transaction (feed_campaign_sends) and leaves the rest to the campaign''s feed_campaign job.';

create function public.tg_campaigns__dequeue_sends() returns trigger
  language plpgsql volatile
  as $$
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
comment on function public.tg_campaigns__dequeue_sends() is
  'A paused campaign''s waiting send jobs are removed, so they neither wait in front of other '
  'campaigns'' jobs nor spend send slots; resume queues its pending recipients again.';

create function public.ensure_campaign_feeders() returns integer
  language plpgsql volatile
  as $$
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
comment on function public.ensure_campaign_feeders() is
  'Called by the sweep: gives back its feed_campaign job to a queued or sending campaign with recipients left to feed, and its generate_campaign job to a campaign whose generation stopped half-way. Returns how many jobs it added.';

-- The sweep queues again recipients that no job will reach. A pending recipient of a queued or
-- sending campaign whose job is gone (deleted by hand, or lost to a race) would keep its campaign
-- from ever being done. Looking for each pending recipient's job every minute would cost a lookup
-- per recipient while a campaign sends; so the look happens only once no send_recipient job is
-- left that could still run (none waiting, retrying or running; one failed for good does not
-- count). A recipient whose job failed for good keeps that job: retrying it is an operator's
-- decision (`mailer jobs retry --failed`). A lost job therefore delays its recipient until the
-- rest of the queue has drained, and at most a minute more. Paused and draft campaigns are left
-- alone.
create function public.requeue_orphaned_recipients() returns integer
  language plpgsql volatile
  as $$
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
comment on function public.requeue_orphaned_recipients() is
  'Called by the sweep: once no send_recipient job can still run, queues the pending recipients of queued and sending campaigns that the feeder has passed but that have no job at all (lost by hand or by a race). Returns how many.';

-- Every pending recipient's send job at once: the design before the feeder, kept as the
-- comparison of bench/enqueue.ts; nothing in mailer calls it.
-- A big enqueue brings graphile-worker's jobs table statistics up to date in the same transaction
-- (feed_campaign_sends does the same on a campaign's first feed).
-- Between campaigns the jobs table is usually empty, and once vacuumed its statistics say so
-- (reltuples 0). The planner then estimates one row for graphile-worker's job fetch and plans a
-- sequential scan and a sort of the whole table for every batch of 100 jobs, until autovacuum
-- gets round to analyzing it (up to a minute later): in bench/send-throughput.ts a 100,000-recipient
-- campaign queued after 20,000 other jobs had run sent at 300-1,100/s for its first ~18 s, each
-- fetch taking 60-200 ms. ANALYZE inside the enqueueing transaction counts the transaction's own
-- new rows (~40 ms for 100,000 jobs), and its statistics commit with the jobs.
-- This is the one place mailer touches a graphile_worker table other than through its functions,
-- and it only reads it. ANALYZE needs the table's owner (or the database's); for any other role
-- (mailer_app, mailer_operator) it is skipped and autovacuum's analyze is what helps.
create function public.enqueue_campaign_sends(p_campaign_id uuid) returns integer
  language plpgsql volatile as $$
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
comment on function public.enqueue_campaign_sends(uuid) is
  'Adds one send_recipient job per pending recipient of the campaign, in customer_id order '
  '(bench/enqueue.ts compares it with the feeder); returns how many. From 10,000 jobs on it also analyzes the jobs table (when the caller owns it), '
  'so graphile-worker''s job fetch is planned for the rows that are there.';

create trigger _500_enqueue_sends after insert or update of status on public.campaigns
  for each row when (new.status = 'queued')
  execute function public.tg_campaigns__enqueue_sends();
create trigger _500_dequeue_sends after update of status on public.campaigns
  for each row when (new.status = 'paused' and old.status is distinct from 'paused')
  execute function public.tg_campaigns__dequeue_sends();

--------------------------------------------------------------------------------------------------
-- 10. Sending: pacing, claims and outcomes

-- Global pacing across all worker processes: a single row holding the next free send slot.
-- Each reservation takes the next slot(s) and moves it on; a send waits for its slot.
create table public.send_pacer (
  id boolean primary key default true,
  next_slot timestamptz not null,
  constraint send_pacer_single_row check (id)
);
comment on table public.send_pacer is 'Next free send slot for global SES rate pacing (one row).';
comment on column public.send_pacer.id is 'Always true: there is exactly one pacer.';
comment on column public.send_pacer.next_slot is 'The earliest time the next send may start.';

create function public.reserve_send_slot(p_rate double precision) returns timestamptz
  language sql volatile as $$
  insert into public.send_pacer as p (id, next_slot)
  values (true, clock_timestamp() + make_interval(secs => 1 / p_rate))
  on conflict (id) do update
    set next_slot = greatest(p.next_slot, clock_timestamp()) + make_interval(secs => 1 / p_rate)
  returning next_slot - make_interval(secs => 1 / p_rate);
$$;
comment on function public.reserve_send_slot(double precision) is
  'Reserves the next send slot at p_rate sends per second across all workers; returns when to send.';

-- A send that would leave late takes a new slot (tasks/send_recipient.ts). These re-reservations
-- were one round trip each with a synchronous commit holding the pacer row's lock: under load,
-- when claims themselves take longer than a slot's 20 ms margin, every send took one and they
-- queued on that lock (Lock:transactionid on reserve_send_slot, 71% of the sampled backend time at
-- R = 1,000,000/s). So the jobs of a process that need a new slot at the same moment share one
-- call. Its commit does not wait for the WAL flush either: a reservation lost in a server crash
-- can hand out again only slots of the last ~0.6 s (three wal_writer_delay), which have passed by
-- the time the server has recovered and the workers claim again.
create function public.reserve_send_slots(p_rate double precision, p_count int)
  returns timestamptz
  language plpgsql volatile as $$
declare
  v_step interval := make_interval(secs => 1 / p_rate);
  v_first timestamptz;
begin
  perform set_config('synchronous_commit', 'off', true);
  insert into public.send_pacer as p (id, next_slot)
  values (true, clock_timestamp() + p_count * v_step)
  on conflict (id) do update
    set next_slot = greatest(p.next_slot, clock_timestamp()) + p_count * v_step
  returning p.next_slot - p_count * v_step into v_first;
  return v_first;
end;
$$;
comment on function public.reserve_send_slots(double precision, int) is
  'Reserves p_count consecutive send slots at p_rate per second across all workers; returns the '
  'first (the others follow 1 / p_rate apart).';

create function public.reserve_send_slots_for(p_rate double precision,
                                                         p_campaign_ids uuid[],
                                                         p_customer_ids uuid[])
  returns table (ord int, slot timestamptz)
  language plpgsql volatile as $$
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
    insert into public.send_pacer as p (id, next_slot)
    values (true, clock_timestamp() + v_count * v_step)
    on conflict (id) do update
      set next_slot = greatest(p.next_slot, clock_timestamp()) + v_count * v_step
    returning p.next_slot - v_count * v_step into v_first;
  end if;
  return query
    select s.ord::int, v_first + (e.nth - 1) * v_step
      from generate_subscripts(p_campaign_ids, 1) as s(ord)
      left join unnest(v_eligible) with ordinality as e(ord, nth) on e.ord = s.ord
     order by s.ord;
end;
$$;
comment on function public.reserve_send_slots_for(double precision, uuid[], uuid[]) is
  'Pacing slots for a batch of recipients, one round trip and one update of send_pacer: row ord '
  '(1-based, the arrays'' order) gets the next free slots in order at p_rate per second, or null '
  'when its recipient is not pending or its campaign not queued or sending.';

create type public.send_claim as (
  outcome text,
  email text,
  template_data jsonb,
  provider text,
  provider_template_name text,
  template_id uuid,
  attempt_count integer
);
comment on type public.send_claim is 'What claim_recipient decided, and what the worker needs to send.';

-- outcome: claimed | not_found | in_flight | in_doubt | suppressed | campaign_<status> |
-- <recipient status>. The result is built in a variable of the declared type: row(...) literals
-- in plpgsql carry type unknown. Slots are reserved before the claim (reserve_send_slots_for).
-- The campaign's lock is the one the update to sending takes: claims that waited for a resume in
-- progress with a share lock, then all updated the campaign to sending, deadlocked (about 15
-- "deadlock detected" per resume with 3 paced workers).
create function public.claim_recipient(p_campaign_id uuid, p_customer_id uuid,
                                       p_lease interval)
  returns public.send_claim language plpgsql volatile as $$
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
comment on function public.claim_recipient(uuid, uuid, interval) is
  'Claims a pending recipient for sending under its row lock (commit before calling SES), naming '
  'the claiming process in claimed_by. A claim older than p_lease with no outcome becomes '
  'in_doubt, never a second send. Waits for a status change of its campaign in progress.';

-- Lock order: the campaign rows first (the queued -> sending move), then the recipients in the
-- order given (the caller sorts them), so two batches never wait for each other in a cycle.
-- Recipients that can simply be claimed (pending, campaign queued/sending, not suppressed) are
-- claimed by one UPDATE; every other one goes through claim_recipient, which decides what it is
-- (the same recipient twice in one batch: the second finds it sending, in_flight). The UPDATE
-- sets updated_at itself, so the timestamps trigger is skipped for it.
create function public.claim_recipients(p_campaign_ids uuid[], p_customer_ids uuid[],
                                        p_lease interval)
  returns table(ord integer, outcome text, email text, template_data jsonb, provider text,
                provider_template_name text, template_id uuid, attempt_count integer)
  language plpgsql volatile as $$
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
comment on function public.claim_recipients(uuid[], uuid[], interval) is
  'claim_recipient for many recipients in one transaction (committed before any of them is sent): '
  'one row per array position (ord, 1-based), attempt_count naming the claim for its outcome. '
  'Callers pass them sorted by (campaign_id, customer_id).';

-- Outcomes of one batch of sends. 'paused': SES refused for an account or configuration reason;
-- the recipient goes back to pending with no new job and its campaign pauses with that reason
-- (resuming enqueues it again). 'released': SES certainly did not take the message (refused
-- connection, throttling); the recipient gets a new job at p_retry_at. An outcome names the
-- attempt it belongs to (p_attempts): updating any row that is sending or in doubt would let a
-- late outcome of attempt 1 overwrite attempt 2's claim after an operator's resend.
create function public.record_send_outcomes(p_campaign_ids uuid[], p_customer_ids uuid[],
                                                       p_attempts integer[], p_outcomes text[],
                                                       p_message_ids text[], p_errors text[],
                                                       p_retry_at timestamptz[])
  returns table(ord integer, recorded text) language plpgsql volatile as $$
#variable_conflict use_column
declare
  v_ords integer[];
  v_outcomes text[];
  v_stale integer[] := '{}';
  v_campaign uuid;
  v_check uuid[] := '{}';
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
    update public.campaigns c set status = 'paused', pause_reason = p.reason
      from (select distinct on (p_campaign_ids[u.position])
                   p_campaign_ids[u.position] as campaign_id,
                   coalesce(p_errors[u.position], 'SES refused the send') as reason
              from unnest(v_ords, v_outcomes) as u(position, outcome)
             where u.outcome = 'paused'
             order by p_campaign_ids[u.position], u.position) p
     where c.campaign_id = p.campaign_id and c.status in ('queued', 'sending');
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
comment on function public.record_send_outcomes(uuid[], uuid[], integer[], text[], text[], text[],
                                                timestamptz[]) is
  'Records what happened to claimed recipients in one transaction (sent | failed | in_doubt | '
  'released: back to pending with a new job at p_retry_at | paused: back to pending, campaign '
  'paused), each only for the claim of its attempt (p_attempts: the claim''s attempt_count). One '
  'row per array position (ord): unchanged (not claimed any more), stale (claimed again since: '
  'dropped), recorded, or recorded_check (call finish_campaign_if_complete after the commit).';

create table public.worker_processes (
  process_id text primary key,
  worker_ids text[] not null default '{}',
  hostname text not null,
  pid integer not null,
  started_at timestamptz not null default now(),
  -- `mailer worker` supervises its runner in a child process (src/worker/supervisor.ts): which
  -- supervisor a runner belongs to, so an operator (and the tests) can find the runner of the
  -- `mailer worker` process they started, and signal the supervisor rather than the runner.
  supervisor_pid integer
);
comment on table public.worker_processes is 'Live mailer worker processes; process_id is also the application_name of their connections.';
comment on column public.worker_processes.process_id is 'Random id; equals pg_stat_activity.application_name while the process is connected.';
comment on column public.worker_processes.worker_ids is 'graphile-worker pool and worker ids that may lock jobs on its behalf.';
comment on column public.worker_processes.hostname is 'Host the process runs on.';
comment on column public.worker_processes.pid is 'OS process id of the runner (the process that holds the connections).';
comment on column public.worker_processes.started_at is 'When it registered.';
comment on column public.worker_processes.supervisor_pid is
  'OS process id of the `mailer worker` supervisor that started this runner and restarts it when it dies; null when run with --no-supervise. Signal this one to stop the worker.';

-- A SIGKILLed worker's claims would stay sending for the whole lease (120 s) plus up to a minute
-- of sweep. A claim names its process (claimed_by); a process without connections has died, and
-- whatever it claimed has no outcome coming.
create function public.release_dead_workers() returns integer
  language plpgsql volatile as $$
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
comment on function public.release_dead_workers() is
  'For worker processes that no longer have a database connection (SIGKILL, crash): their claims '
  'become in_doubt at once, their jobs are unlocked, their campaigns finish if nothing is left. '
  'Returns how many processes were found dead. Runs in a transaction of its own: its finishing '
  'locks, taken after another function''s, would break the lock order.';

-- The sweep finishes campaigns in campaign_id order, the lock order of an outcome batch: in scan
-- order, a batch recording the last outcomes of two campaigns deadlocked with the sweep.
create function public.sweep_send_claims(p_lease interval) returns integer
  language plpgsql volatile as $$
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
comment on function public.sweep_send_claims(interval) is
  'Declares stale claims in_doubt and finishes campaigns with nothing left to send (in '
  'campaign_id order, the lock order of record_send_outcomes).';

--------------------------------------------------------------------------------------------------
-- 11. In-doubt recipients

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

--------------------------------------------------------------------------------------------------
-- 12. Operations: the job queue and retention

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

--------------------------------------------------------------------------------------------------
-- 13. Privileges
-- The roles are described in section 1.

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
revoke update, delete on public.operator_actions from mailer_app;

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
-- executable by PUBLIC, so this is done for every such function above. A later migration that
-- adds one revokes and grants the same itself:
--   revoke all on function public.f(...) from public;
--   grant execute on function public.f(...) to mailer_operator;

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
