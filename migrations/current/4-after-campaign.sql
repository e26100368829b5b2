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
