--! Previous: sha1:194d36f5dded672ec725a61438c32547c1c02fb9
--! Hash: sha1:5485c720f561cbbab8e6751d88262d6d931f8416
--! Message: Operator's day: schedules, drafts, test sends, honest status

--! split: 1-current.sql
-- Enter migration here (rerun-safe: drop ... if exists, create or replace)

--! split: 3-before-campaign.sql
-- Before a campaign (issue 18): campaigns scheduled for a time, drafts deleted, previews, test
-- sends recorded. Rerun-safe: drop ... if exists first (reverse dependency order), create or
-- replace, add column if not exists.

drop trigger if exists _310_leave_schedule on public.campaigns;
drop function if exists public.tg_campaigns__leave_schedule();
drop function if exists public.schedule_campaign(uuid, timestamptz);
drop function if exists public.unschedule_campaign(uuid);
drop function if exists public.start_scheduled_campaign(uuid);
drop function if exists public.delete_draft_campaign(uuid, text);
drop function if exists public.record_test_send(integer, uuid, text[], uuid, text[]);
drop function if exists public.customer_template_data(uuid, text);

--------------------------------------------------------------------------------------------------
-- The operator acts of this file are recorded like the others.

alter table public.operator_actions drop constraint if exists operator_actions_action_check;
alter table public.operator_actions add constraint operator_actions_action_check check (action in (
  'activate_template', 'add_template', 'deactivate_template', 'enqueue_generate_campaign',
  'pause_campaign', 'queue_campaign', 'resolve_in_doubt', 'resume_campaign', 'retry_failed',
  'retry_jobs', 'suppress', 'unsuppress', 'auto_resend',
  'schedule_campaign', 'unschedule_campaign', 'delete_campaign', 'test_send'));

--------------------------------------------------------------------------------------------------
-- Scheduling. The status set stays the seed's (draft|queued|sending|done|paused): a scheduled
-- campaign is a draft with a time, and a graphile-worker job keyed per campaign, run_at that
-- time, queues it as queue_campaign does. Leaving draft (queued by hand or by that job) clears
-- the time and removes the job, in the same transaction.

alter table public.campaigns add column if not exists scheduled_at timestamptz;
comment on column public.campaigns.scheduled_at is
  'When a draft is to be queued (schedule_campaign; the queue_scheduled_campaign job, key '
  'queue_scheduled_campaign:<campaign_id>, runs then); null when not scheduled. Only a draft '
  'has one: leaving draft clears it.';
alter table public.campaigns drop constraint if exists campaigns_scheduled_only_when_draft;
alter table public.campaigns add constraint campaigns_scheduled_only_when_draft
  check (scheduled_at is null or status = 'draft');

create or replace function public.scheduled_campaign_job_key(p_campaign_id uuid) returns text
  language sql immutable as $$
  select 'queue_scheduled_campaign:' || p_campaign_id::text;
$$;
comment on function public.scheduled_campaign_job_key(uuid) is
  'The graphile-worker job key of a campaign''s scheduled queueing (one job per campaign).';

create or replace function public.tg_campaigns__leave_schedule() returns trigger
  language plpgsql volatile as $$
begin
  if new.status <> 'draft' and old.scheduled_at is not null then
    new.scheduled_at := null;
    perform graphile_worker.remove_job(public.scheduled_campaign_job_key(new.campaign_id));
  end if;
  return new;
end;
$$;
comment on function public.tg_campaigns__leave_schedule() is
  'A campaign leaving draft (queued by hand or at its time) forgets its schedule and its job.';
create trigger _310_leave_schedule
  before update of status on public.campaigns
  for each row when (new.status is distinct from old.status and old.scheduled_at is not null)
  execute function public.tg_campaigns__leave_schedule();

create or replace function public.schedule_campaign(p_campaign_id uuid, p_at timestamptz)
  returns timestamptz
  language plpgsql volatile security definer set search_path = pg_catalog, public, pg_temp as $$
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
comment on function public.schedule_campaign(uuid, timestamptz) is
  'Queues a draft campaign at p_at (a job keyed per campaign; scheduling again moves it). Refuses '
  'a time not in the future and a campaign that is not a draft. Recorded in operator_actions.';
revoke all on function public.schedule_campaign(uuid, timestamptz) from public;
grant all on function public.schedule_campaign(uuid, timestamptz) to mailer_operator;

create or replace function public.unschedule_campaign(p_campaign_id uuid) returns boolean
  language plpgsql volatile security definer set search_path = pg_catalog, public, pg_temp as $$
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
comment on function public.unschedule_campaign(uuid) is
  'Cancels a draft''s schedule and removes its job (it stays a draft). False when it had none.';
revoke all on function public.unschedule_campaign(uuid) from public;
grant all on function public.unschedule_campaign(uuid) to mailer_operator;

-- Run by the queue_scheduled_campaign task, as mailer_app: with the caller's rights (a SECURITY
-- DEFINER function is for operators only), so it queues through set_campaign_status, the body of
-- queue_campaign, with the same arguments. A job whose campaign was queued, unscheduled or
-- deleted meanwhile finds nothing to do; one that runs early (a clock step) waits again.
create or replace function public.start_scheduled_campaign(p_campaign_id uuid, out status text,
  out scheduled_at timestamptz)
  language plpgsql volatile as $$
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
comment on function public.start_scheduled_campaign(uuid) is
  'Queues a scheduled draft whose time has come (as queue_campaign does, recorded as '
  'queue_campaign); returns the campaign''s status and remaining schedule (status missing when '
  'it is gone).';

--------------------------------------------------------------------------------------------------
-- Deleting a draft: a mistaken generation leaves no draft behind forever. A draft never sent
-- anything, so its recipients and unsubscribe tokens go with it (on delete cascade); its events
-- and operator actions stay, with campaign_id null, the delete itself recorded with the
-- campaign's id and name in its details.

create or replace function public.delete_draft_campaign(p_campaign_id uuid, p_note text default null)
  returns integer
  language plpgsql volatile security definer set search_path = pg_catalog, public, pg_temp as $$
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
comment on function public.delete_draft_campaign(uuid, text) is
  'Deletes a draft campaign (not one still generating) with its recipients, unsubscribe tokens '
  'and scheduled job; returns how many recipients went. Refuses any other status. Recorded in '
  'operator_actions (the campaign id in details: the row''s campaign_id becomes null).';
revoke all on function public.delete_draft_campaign(uuid, text) from public;
grant all on function public.delete_draft_campaign(uuid, text) to mailer_operator;

--------------------------------------------------------------------------------------------------
-- Test sends and previews: a customer's template_data as generate_campaign_chunk builds it, with
-- the unsubscribe URL given (a test send carries no real token: it must unsubscribe nobody).

create or replace function public.customer_template_data(p_customer_id uuid, p_unsubscribe_url text)
  returns jsonb
  language sql stable as $$
  select jsonb_build_object('name', c.name, 'company', c.company, 'country', c.country,
                            'email', c.email, 'unsubscribe_url', p_unsubscribe_url)
    from public.customers c where c.customer_id = p_customer_id;
$$;
comment on function public.customer_template_data(uuid, text) is
  'The template_data generate_campaign_chunk gives this customer (same keys), with the given '
  'unsubscribe URL; for previews and test sends.';

create or replace function public.record_test_send(p_week integer, p_template_id uuid,
  p_to text[], p_customer_id uuid, p_message_ids text[]) returns bigint
  language sql volatile as $$
  select public.record_operator_action('test_send', null, null, p_customer_id, null,
    jsonb_build_object('week_of_month', p_week, 'template_id', p_template_id, 'to', p_to,
                       'message_ids', p_message_ids));
$$;
comment on function public.record_test_send(integer, uuid, text[], uuid, text[]) is
  'Records a test send (mailer campaign test): the week, template, addresses and SES message '
  'ids, and the customer whose data it was rendered with (null: sample data).';

--! split: 4-after-campaign.sql
-- During and after a campaign (issue 18): the live send rate from SES-accepted sends only, SES
-- errors by kind, and the campaign report. Rerun-safe: drop ... if exists, create or replace,
-- create index if not exists.

drop function if exists public.campaign_report_recipients(uuid);
drop function if exists public.campaign_report(uuid);
drop function if exists public.campaign_send_errors(uuid);
drop function if exists public.campaign_accepted_since(uuid, timestamptz);

-- A sent recipient's updated_at is when its outcome was recorded, right after SES accepted the
-- message (record_send_outcomes). Counting those in a recent window is the honest rate; the claim
-- time (last_attempt_at) also counts sends SES refused or never saw (an outage showed 125/s while
-- nothing was accepted). One entry per accepted send, appended at the right end of the campaign's
-- range, so the live rate reads the last seconds of the index instead of every recipient.
create index if not exists campaign_recipients_accepted_at_idx
  on public.campaign_recipients (campaign_id, updated_at)
  where recipient_status = 'sent' and ses_message_id is not null;
comment on index public.campaign_recipients_accepted_at_idx is
  'Sent recipients of a campaign by the time their SES acceptance was recorded: the live send rate.';

-- Recipients whose last send ended in an SES error and who are not settled: failed (SES refused
-- them), in doubt, or pending again after an outage or an account error. Few rows, even at a
-- million recipients, unless SES is failing; that is when the status must still answer at once.
create index if not exists campaign_recipients_send_errors_idx
  on public.campaign_recipients (campaign_id)
  where last_error is not null and recipient_status in ('pending', 'failed', 'in_doubt');
comment on index public.campaign_recipients_send_errors_idx is
  'Unsettled recipients with an error from their last send: SES errors by kind in campaign status.';

create or replace function public.campaign_accepted_since(p_campaign_id uuid, p_since timestamptz)
  returns table (accepted bigint, last_accepted_at timestamptz)
  language sql stable as $$
  -- Both read campaign_recipients_accepted_at_idx only (its predicate is repeated here): a range
  -- scan of the window, and the last entry of the campaign's range.
  select (select count(*) from public.campaign_recipients r
           where r.campaign_id = p_campaign_id and r.updated_at > p_since
             and r.recipient_status = 'sent' and r.ses_message_id is not null),
         (select max(r.updated_at) from public.campaign_recipients r
           where r.campaign_id = p_campaign_id
             and r.recipient_status = 'sent' and r.ses_message_id is not null);
$$;
comment on function public.campaign_accepted_since(uuid, timestamptz) is
  'How many of the campaign''s sends SES accepted (recorded as sent with a message id) after '
  'p_since, and when the last one was: the live send rate, and whether sending has stalled.';

create or replace function public.campaign_send_errors(p_campaign_id uuid)
  returns table (recipient_status text, kind text, recipients bigint, last_at timestamptz)
  language sql stable as $$
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
comment on function public.campaign_send_errors(uuid) is
  'Unsettled recipients of a campaign by the error of their last send: failed (SES refused '
  'them), in_doubt, or pending (waiting after an outage or an account error), by error name.';

create or replace function public.campaign_report(p_campaign_id uuid)
  returns table (
    campaign_id uuid, campaign_name text, status text, pause_reason text, generating boolean,
    created_at timestamptz, started_at timestamptz, last_attempt_at timestamptz,
    finished_at timestamptz, recipients bigint, pending bigint, sending bigint, sent bigint,
    in_doubt bigint, failed bigint, suppressed bigint, bounced bigint, complained bigint,
    unsubscribed bigint, accepted bigint, delivered bigint, opened bigint, clicked bigint,
    bounce_rate numeric, complaint_rate numeric
  )
  language sql stable as $$
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
comment on function public.campaign_report(uuid) is
  'A campaign''s report: start, last attempt and finish, recipients by status, delivered, '
  'opened and clicked from its SES events, bounce and complaint rates over accepted sends.';

create or replace function public.campaign_report_recipients(p_campaign_id uuid)
  returns table (
    customer_id uuid, email text, recipient_status text, last_error text, ses_message_id text,
    attempt_count integer, last_attempt_at timestamptz, updated_at timestamptz
  )
  language sql stable as $$
  select r.customer_id, r.email, r.recipient_status, r.last_error, r.ses_message_id,
         r.attempt_count, r.last_attempt_at, r.updated_at
    from public.campaign_recipients r
   where r.campaign_id = p_campaign_id
     and r.recipient_status in ('failed', 'bounced', 'complained', 'in_doubt')
   order by array_position(array['failed', 'bounced', 'complained', 'in_doubt'], r.recipient_status),
            r.email;
$$;
comment on function public.campaign_report_recipients(uuid) is
  'The recipients of a campaign an operator acts on: failed, bounced, complained and in doubt, '
  'with the error or event that put them there.';
