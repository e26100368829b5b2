--! Previous: -
--! Hash: sha1:2a581e97ef39fca035f458fea857fbc0818989ab
--! Message: initial schema

-- Initial schema: the seed's seven tables, their rules, and the SQL that moves work through them.
-- Rerun-safe: everything is dropped first (reverse dependency order), then created.
drop function if exists public.sweep_send_claims(interval);
drop function if exists public.release_dead_workers();
drop function if exists public.finish_campaign_if_complete(uuid);
drop function if exists public.record_send_result(uuid, uuid, text, text, text, timestamptz);
drop function if exists public.claim_recipient(uuid, uuid, interval, double precision);
drop type if exists public.send_claim;
drop function if exists public.generate_campaign(integer, date, boolean, interval, text);
drop function if exists public.enqueue_campaign_sends(uuid);
drop table if exists public.send_pacer;
drop table if exists public.worker_processes;
drop table if exists public.email_events_op;
drop table if exists public.unsubscribe_tokens;
drop table if exists public.suppression_list;
drop table if exists public.campaign_recipients;
drop table if exists public.campaigns;
drop table if exists public.template_contents;
drop table if exists public.templates;
drop table if exists public.customers;
drop function if exists public.tg_suppression_list__suppress_pending();
drop function if exists public.tg_campaigns__enqueue_sends();
drop function if exists public.tg_campaigns__check_transition();
drop function if exists public.tg__lowercase_email();
drop function if exists public.tg__timestamps();

--------------------------------------------------------------------------------------------------
-- Shared trigger functions

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
  'Maintains created_at (set once, never changed) and updated_at (every update).';

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

--------------------------------------------------------------------------------------------------
-- customers

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
comment on column public.customers.created_at is 'When the row was inserted (trigger-maintained).';
comment on column public.customers.updated_at is 'When the row last changed (trigger-maintained).';
create trigger _100_lowercase_email before insert or update of email on public.customers
  for each row execute function public.tg__lowercase_email();
create trigger _200_timestamps before insert or update on public.customers
  for each row execute function public.tg__timestamps();

--------------------------------------------------------------------------------------------------
-- templates

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
comment on column public.template_contents.created_at is 'When the row was inserted (trigger-maintained).';
comment on column public.template_contents.updated_at is 'When the row last changed (trigger-maintained).';
create trigger _200_timestamps before insert or update on public.template_contents
  for each row execute function public.tg__timestamps();

--------------------------------------------------------------------------------------------------
-- campaigns

create table public.campaigns (
  campaign_id uuid primary key default gen_random_uuid(),
  campaign_name text not null,
  week_of_month integer not null,
  generated_date date not null,
  template_id uuid not null references public.templates (template_id) on delete restrict,
  status text not null default 'draft',
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint campaigns_week_of_month_check check (week_of_month between 1 and 4),
  constraint campaigns_status_check check (status in ('draft', 'queued', 'sending', 'done', 'paused')),
  -- Generating twice for the same week and date must not make a second campaign.
  constraint campaigns_week_date_key unique (week_of_month, generated_date)
);
comment on table public.campaigns is 'One weekly send. Status: draft -> queued -> sending -> done; paused stops new sends, queued again resumes.';
comment on column public.campaigns.campaign_id is 'Primary key.';
comment on column public.campaigns.campaign_name is 'Human name, e.g. "week 2 of 2026-11".';
comment on column public.campaigns.week_of_month is 'Which weekly template line (1-4) the campaign uses.';
comment on column public.campaigns.generated_date is 'The date it was generated for; unique with week_of_month.';
comment on column public.campaigns.template_id is 'The template version picked at generation time.';
comment on column public.campaigns.status is 'draft|queued|sending|done|paused. Setting queued (from anywhere, psql included) enqueues the sends.';
comment on column public.campaigns.created_at is 'When the row was inserted (trigger-maintained).';
comment on column public.campaigns.updated_at is 'When the row last changed (trigger-maintained); not in the seed, added for operators.';
create index campaigns_template_id_idx on public.campaigns (template_id);
create trigger _200_timestamps before insert or update on public.campaigns
  for each row execute function public.tg__timestamps();

--------------------------------------------------------------------------------------------------
-- campaign_recipients

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
comment on column public.campaign_recipients.created_at is 'When the row was inserted (trigger-maintained).';
comment on column public.campaign_recipients.updated_at is 'When the row last changed (trigger-maintained).';
-- customers show / FK on delete.
create index campaign_recipients_customer_id_idx on public.campaign_recipients (customer_id);
-- "Is anything left to send?" after every send: a probe into a small partial index.
create index campaign_recipients_unsent_idx on public.campaign_recipients (campaign_id)
  where recipient_status in ('pending', 'sending');
-- A new suppression stops that address's pending recipients in every campaign.
create index campaign_recipients_pending_email_idx on public.campaign_recipients (email)
  where recipient_status = 'pending';
-- SES events find their recipient by message id.
create unique index campaign_recipients_ses_message_id_key on public.campaign_recipients (ses_message_id)
  where ses_message_id is not null;
-- The lease sweep looks for stale claims only.
create index campaign_recipients_sending_idx on public.campaign_recipients (last_attempt_at)
  where recipient_status = 'sending';
create trigger _200_timestamps before insert or update on public.campaign_recipients
  for each row execute function public.tg__timestamps();

--------------------------------------------------------------------------------------------------
-- suppression_list

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
comment on column public.suppression_list.created_at is 'When the address was first suppressed (trigger-maintained).';
comment on column public.suppression_list.updated_at is 'When the entry last changed (trigger-maintained).';
create trigger _100_lowercase_email before insert or update of email on public.suppression_list
  for each row execute function public.tg__lowercase_email();
create trigger _200_timestamps before insert or update on public.suppression_list
  for each row execute function public.tg__timestamps();

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
create trigger _500_suppress_pending after insert on public.suppression_list
  for each row execute function public.tg_suppression_list__suppress_pending();

--------------------------------------------------------------------------------------------------
-- unsubscribe_tokens

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

--------------------------------------------------------------------------------------------------
-- email_events_op

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

--------------------------------------------------------------------------------------------------
-- Worker bookkeeping (not in the seed): which graphile-worker ids belong to which live process,
-- so that jobs locked by a SIGKILLed worker are released in seconds rather than after 4 hours.

create table public.worker_processes (
  process_id text primary key,
  worker_ids text[] not null default '{}',
  hostname text not null,
  pid integer not null,
  started_at timestamptz not null default now()
);
comment on table public.worker_processes is 'Live mailer worker processes; process_id is also the application_name of their connections.';
comment on column public.worker_processes.process_id is 'Random id; equals pg_stat_activity.application_name while the process is connected.';
comment on column public.worker_processes.worker_ids is 'graphile-worker pool and worker ids that may lock jobs on its behalf.';
comment on column public.worker_processes.hostname is 'Host the process runs on.';
comment on column public.worker_processes.pid is 'OS process id.';
comment on column public.worker_processes.started_at is 'When it registered.';

-- Global pacing across all worker processes: a single row holding the next free send slot.
create table public.send_pacer (
  id boolean primary key default true,
  next_slot timestamptz not null,
  constraint send_pacer_single_row check (id)
);
comment on table public.send_pacer is 'Next free send slot for global SES rate pacing (one row).';
comment on column public.send_pacer.id is 'Always true: there is exactly one pacer.';
comment on column public.send_pacer.next_slot is 'The earliest time the next send may start.';

--------------------------------------------------------------------------------------------------
-- Campaign state: transitions are checked, and entering `queued` enqueues the sends in the same
-- transaction, however the status was set (task, CLI or a hand-written UPDATE in psql).

create function public.tg_campaigns__check_transition() returns trigger
  language plpgsql volatile as $$
begin
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
comment on function public.tg_campaigns__check_transition() is
  'Refuses status changes that would lose or skip recipients (see README, campaign states).';
create trigger _300_check_transition before update of status on public.campaigns
  for each row execute function public.tg_campaigns__check_transition();

-- All jobs at once, in one add_jobs call (one statement, set-based). job_key makes a resume after a
-- pause refresh the still-queued jobs instead of adding a second copy of each.
create function public.enqueue_campaign_sends(p_campaign_id uuid) returns integer
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
       where r.campaign_id = p_campaign_id and r.recipient_status = 'pending'),
    true);
$$;
comment on function public.enqueue_campaign_sends(uuid) is
  'Adds one send_recipient job per pending recipient of the campaign; returns how many.';

create function public.tg_campaigns__enqueue_sends() returns trigger
  language plpgsql volatile as $$
begin
  perform public.enqueue_campaign_sends(new.campaign_id);
  -- Nothing to send (everyone suppressed, or already sent): the campaign is done right away.
  if not exists (select 1 from public.campaign_recipients
                  where campaign_id = new.campaign_id and recipient_status in ('pending', 'sending')) then
    update public.campaigns set status = 'done' where campaign_id = new.campaign_id;
  end if;
  return null;
end;
$$;
comment on function public.tg_campaigns__enqueue_sends() is
  'On entering queued: enqueue the sends in the same transaction.';
create trigger _500_enqueue_sends after insert or update of status on public.campaigns
  for each row when (new.status = 'queued')
  execute function public.tg_campaigns__enqueue_sends();

--------------------------------------------------------------------------------------------------
-- generate_campaign: one set-based transaction. Idempotent per (week_of_month, generated_date).

create function public.generate_campaign(
  p_week_of_month integer,
  p_generated_date date,
  p_send boolean,
  p_token_ttl interval,
  p_public_url text
) returns uuid
  language plpgsql volatile as $$
declare
  v_template public.templates;
  v_campaign_id uuid;
begin
  if p_week_of_month is null or p_week_of_month not between 1 and 4 then
    raise exception 'generate_campaign: week_of_month must be 1-4, got %', p_week_of_month
      using errcode = 'invalid_parameter_value';
  end if;
  select * into v_template from public.templates
   where week_of_month = p_week_of_month and is_active
   order by version desc limit 1;
  if not found then
    raise exception 'generate_campaign: no active template for week %', p_week_of_month
      using errcode = 'no_data_found';
  end if;

  insert into public.campaigns (campaign_name, week_of_month, generated_date, template_id)
  values (format('week %s, %s', p_week_of_month, p_generated_date), p_week_of_month,
          p_generated_date, v_template.template_id)
  on conflict (week_of_month, generated_date) do nothing
  returning campaign_id into v_campaign_id;

  if v_campaign_id is null then
    -- Already generated (a rerun, or a second worker): return the existing one unchanged.
    select campaign_id into v_campaign_id from public.campaigns
     where week_of_month = p_week_of_month and generated_date = p_generated_date;
    return v_campaign_id;
  end if;

  insert into public.unsubscribe_tokens (email, campaign_id, expires_at)
  select c.email, v_campaign_id, now() + p_token_ttl
    from public.customers c
   where c.is_active;

  insert into public.campaign_recipients (campaign_id, customer_id, email, recipient_status, template_data)
  select v_campaign_id, c.customer_id, c.email,
         case when s.email is null then 'pending' else 'suppressed' end,
         jsonb_build_object(
           'name', c.name, 'company', c.company, 'country', c.country, 'email', c.email,
           'unsubscribe_url', rtrim(p_public_url, '/') || '/unsubscribe/' || t.token_id)
    from public.customers c
    join public.unsubscribe_tokens t on t.campaign_id = v_campaign_id and t.email = c.email
    left join public.suppression_list s on s.email = c.email
   where c.is_active;

  if p_send then
    update public.campaigns set status = 'queued' where campaign_id = v_campaign_id;
  end if;
  return v_campaign_id;
end;
$$;
comment on function public.generate_campaign(integer, date, boolean, interval, text) is
  'Creates the week''s campaign with one recipient and one unsubscribe token per active customer; '
  'suppressed addresses are recorded as suppressed. Queues it when p_send. Idempotent per week and date.';

--------------------------------------------------------------------------------------------------
-- Sending: claim (committed before SES is called), then record the outcome.

create type public.send_claim as (
  outcome text,
  email text,
  template_data jsonb,
  provider text,
  provider_template_name text,
  template_id uuid,
  send_at timestamptz,
  attempt_count integer
);
comment on type public.send_claim is 'What claim_recipient decided, and what the worker needs to send.';

-- outcome: claimed | not_found | in_flight | in_doubt | suppressed | campaign_<status> | <recipient status>
-- p_rate: sends per second for global pacing (null or 0 = unpaced). The slot is reserved in the
-- claim's transaction, so the pacer row is locked only for that short transaction.
create function public.claim_recipient(
  p_campaign_id uuid, p_customer_id uuid, p_lease interval, p_rate double precision
) returns public.send_claim
  language plpgsql volatile as $$
declare
  r public.campaign_recipients;
  v_campaign_status text;
  v_template public.templates;
  v_send_at timestamptz;
begin
  select * into r from public.campaign_recipients
   where campaign_id = p_campaign_id and customer_id = p_customer_id
     for update;
  if not found then
    return row('not_found', null, null, null, null, null, null, null);
  end if;
  if r.recipient_status = 'sending' then
    if r.last_attempt_at < now() - p_lease then
      update public.campaign_recipients
         set recipient_status = 'in_doubt', last_error = 'claim expired without a recorded outcome'
       where campaign_id = p_campaign_id and customer_id = p_customer_id;
      return row('in_doubt', r.email, null, null, null, null, null, null);
    end if;
    return row('in_flight', r.email, null, null, null, null, null, null);
  end if;
  if r.recipient_status <> 'pending' then
    return row(r.recipient_status, r.email, null, null, null, null, null, null);
  end if;

  select status into v_campaign_status from public.campaigns where campaign_id = p_campaign_id;
  if v_campaign_status not in ('queued', 'sending') then
    return row('campaign_' || v_campaign_status, r.email, null, null, null, null, null, null);
  end if;

  -- Suppression is checked again here, under the recipient's row lock, at send time.
  if exists (select 1 from public.suppression_list where email = r.email) then
    update public.campaign_recipients
       set recipient_status = 'suppressed', last_error = 'suppressed at send time'
     where campaign_id = p_campaign_id and customer_id = p_customer_id;
    return row('suppressed', r.email, null, null, null, null, null, null);
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
    insert into public.send_pacer as p (id, next_slot)
    values (true, clock_timestamp() + make_interval(secs => 1 / p_rate))
    on conflict (id) do update
      set next_slot = greatest(p.next_slot, clock_timestamp()) + make_interval(secs => 1 / p_rate)
    returning next_slot - make_interval(secs => 1 / p_rate) into v_send_at;
  end if;

  select t.* into v_template
    from public.campaigns c join public.templates t using (template_id)
   where c.campaign_id = p_campaign_id;
  return row('claimed', r.email, r.template_data, v_template.provider,
             v_template.provider_template_name, v_template.template_id, v_send_at,
             r.attempt_count + 1);
end;
$$;
comment on function public.claim_recipient(uuid, uuid, interval, double precision) is
  'Claims a pending recipient for sending under its row lock (commit before calling SES). '
  'A claim older than p_lease with no outcome becomes in_doubt, never a second send.';

-- p_outcome: sent | failed | in_doubt | released (SES certainly did not take it: back to pending,
-- with a fresh job at p_retry_at).
create function public.record_send_result(
  p_campaign_id uuid, p_customer_id uuid, p_outcome text, p_message_id text, p_error text,
  p_retry_at timestamptz
) returns boolean
  language plpgsql volatile as $$
declare
  v_updated boolean;
begin
  if p_outcome not in ('sent', 'failed', 'in_doubt', 'released') then
    raise exception 'record_send_result: unknown outcome %', p_outcome using errcode = 'invalid_parameter_value';
  end if;
  update public.campaign_recipients
     set recipient_status = case p_outcome when 'released' then 'pending' else p_outcome end,
         ses_message_id = coalesce(p_message_id, ses_message_id),
         last_error = p_error
   where campaign_id = p_campaign_id and customer_id = p_customer_id
     and recipient_status in ('sending', 'in_doubt');
  v_updated := found;
  if v_updated and p_outcome = 'released' then
    perform graphile_worker.add_job('send_recipient',
      json_build_object('campaign_id', p_campaign_id, 'customer_id', p_customer_id),
      run_at => coalesce(p_retry_at, now()));
  end if;
  return v_updated;
end;
$$;
comment on function public.record_send_result(uuid, uuid, text, text, text, timestamptz) is
  'Records what happened to a claimed recipient; released recipients get a new job at p_retry_at.';

-- Run after the outcome has committed: the last recipient's check then sees every other outcome.
create function public.finish_campaign_if_complete(p_campaign_id uuid) returns boolean
  language sql volatile as $$
  update public.campaigns set status = 'done'
   where campaign_id = p_campaign_id and status in ('queued', 'sending')
     and not exists (select 1 from public.campaign_recipients
                      where campaign_id = p_campaign_id and recipient_status in ('pending', 'sending'))
  returning true;
$$;
comment on function public.finish_campaign_if_complete(uuid) is
  'Marks a queued/sending campaign done when no recipient is pending or sending.';

--------------------------------------------------------------------------------------------------
-- Recovery sweeps (run by the recurring sweep task and at worker start).

create function public.release_dead_workers() returns integer
  language plpgsql volatile as $$
declare
  v_ids text[];
  v_count integer;
begin
  with dead as (
    delete from public.worker_processes w
     where not exists (select 1 from pg_stat_activity a where a.application_name = w.process_id)
    returning w.worker_ids
  )
  select coalesce(array_agg(id), '{}'), count(*) into v_ids, v_count
    from dead, unnest(dead.worker_ids) as id;
  if cardinality(v_ids) > 0 then
    perform graphile_worker.force_unlock_workers(v_ids);
  end if;
  return v_count;
end;
$$;
comment on function public.release_dead_workers() is
  'Unlocks jobs held by worker processes that no longer have a database connection (SIGKILL, crash).';

create function public.sweep_send_claims(p_lease interval) returns integer
  language plpgsql volatile as $$
declare
  v_count integer;
begin
  update public.campaign_recipients
     set recipient_status = 'in_doubt', last_error = 'claim expired without a recorded outcome'
   where recipient_status = 'sending' and last_attempt_at < now() - p_lease;
  get diagnostics v_count = row_count;
  perform public.finish_campaign_if_complete(campaign_id)
     from public.campaigns where status in ('queued', 'sending');
  return v_count;
end;
$$;
comment on function public.sweep_send_claims(interval) is
  'Declares stale claims in_doubt and finishes campaigns with nothing left to send.';
