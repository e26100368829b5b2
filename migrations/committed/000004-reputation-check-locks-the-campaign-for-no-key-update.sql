--! Previous: sha1:71dc18d4467eb713bbd8791e9a53c661867c5083
--! Hash: sha1:9753f2dfb045a45eeba537089d174be867fb5b92
--! Message: reputation check locks the campaign for no key update

--! split: 1-current.sql
-- Enter migration here (rerun-safe: drop ... if exists, create or replace)

create or replace function public.check_campaign_reputation(
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
  update public.campaigns set status = 'paused' where campaign_id = p_campaign_id;
  return v_reason;
end;
$$;
