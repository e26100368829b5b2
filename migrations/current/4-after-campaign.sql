-- During and after a campaign (issue 18): the live send rate from SES-accepted sends only, SES
-- errors by kind. Rerun-safe: drop ... if exists, create or replace,
-- create index if not exists.

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
  returns bigint
  language sql stable as $$
  -- An index-only range scan of campaign_recipients_accepted_at_idx (the predicate matches it).
  select count(*) from public.campaign_recipients r
   where r.campaign_id = p_campaign_id and r.updated_at > p_since
     and r.recipient_status = 'sent' and r.ses_message_id is not null;
$$;
comment on function public.campaign_accepted_since(uuid, timestamptz) is
  'How many of the campaign''s sends SES accepted (recorded as sent with a message id) after '
  'p_since: the live send rate over a recent window.';

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
