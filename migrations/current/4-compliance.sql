-- Compliance (issue 15, items 7-9): suppression strength, one-click unsubscribe that keeps
-- working, one campaign per week of the month. Rerun-safe: drop ... if exists in reverse
-- dependency order, create or replace.

drop trigger if exists _150_keep_strongest on public.suppression_list;
drop trigger if exists _150_never_weaken on public.suppression_list;
drop function if exists public.tg_suppression_list__keep_strongest();
drop function if exists public.tg_suppression_list__never_weaken();
drop function if exists public.enqueue_generate_campaign(integer, date, boolean);
drop function if exists public.generate_campaign(integer, date, boolean, interval, text);
drop function if exists public.check_campaign_identity(text, integer, date, boolean);

--------------------------------------------------------------------------------------------------
-- 7. Suppression strength. Every insert into suppression_list used `on conflict do nothing`, so an
-- unsubscribe or a complaint for an address already suppressed as manual or bounce_hard kept the
-- weaker reason, and a later unsuppress_email without force mailed someone who had unsubscribed.
-- The rule lives on the table, so that every writer (apply_ses_event, unsubscribe_by_token,
-- suppress_email, psql) gets it whatever its own statement says.

create or replace function public.suppression_strength(p_reason text) returns integer
  language sql immutable parallel safe as $$
  select case p_reason when 'complaint' then 4 when 'unsubscribe' then 3
                       when 'bounce_hard' then 2 when 'manual' then 1 end;
$$;
comment on function public.suppression_strength(text) is
  'How binding a suppression reason is: complaint 4 > unsubscribe 3 > bounce_hard 2 > manual 1. The stronger reason always wins.';

-- SECURITY DEFINER: mailer_app may add to the list but has no UPDATE on it (migration 000003);
-- strengthening an entry is the one change it may cause, and only through this trigger. A trigger
-- function needs no EXECUTE grant to fire, so mailer_app still cannot call it.
create or replace function public.tg_suppression_list__keep_strongest() returns trigger
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
  return new; -- an existing entry now makes the insert conflict, as before
end;
$$;
comment on function public.tg_suppression_list__keep_strongest() is
  'Before a suppression is inserted: an existing entry for the address with a weaker reason takes the new reason and source (created_at kept, updated_at moved); the insert then conflicts as before.';
revoke all on function public.tg_suppression_list__keep_strongest() from public;
grant all on function public.tg_suppression_list__keep_strongest() to mailer_operator;

-- After _100_lowercase_email, so the address is compared normalised.
create trigger _150_keep_strongest before insert on public.suppression_list
  for each row execute function public.tg_suppression_list__keep_strongest();

create or replace function public.tg_suppression_list__never_weaken() returns trigger
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
create trigger _150_never_weaken before update of reason on public.suppression_list
  for each row
  when (public.suppression_strength(new.reason) < public.suppression_strength(old.reason))
  execute function public.tg_suppression_list__never_weaken();

-- What an address's own opt-outs left behind, newest first. The suppression entry only holds the
-- strongest reason since it was created, and unsuppress_email deletes it; operator_actions is the
-- durable record (append-only, never pruned; every lift records the reason it removed and every
-- operator suppression the reason it gave). email_events_op holds the person's own acts (the
-- unsubscribe link, complaints, SES subscription opt-outs) for EVENTS_RETENTION_DAYS: the
-- evidence for entries written before this migration, when the weaker reason stayed.
create or replace function public.opt_out_record(p_email text)
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

-- Entries written before this migration kept the first reason: give them the strongest one their
-- address's events show since its last lift (an opt-out before a lift was consented away).
update public.suppression_list s
   set reason = e.reason, source = case e.reason when 'complaint' then 'ses' else 'user' end
  from (
    select distinct on (e.email) e.email,
           case e.event_type when 'complaint' then 'complaint' else 'unsubscribe' end as reason
      from public.email_events_op e
     where (e.event_type in ('unsubscribe', 'complaint')
            or (e.event_type = 'subscription'
                and e.payload #>> '{subscription,newTopicPreferences,unsubscribeAll}' = 'true'))
       and e.created_at > coalesce((select max(a.created_at) from public.operator_actions a
                                     where a.action = 'unsuppress' and a.email = e.email),
                                   '-infinity')
     order by e.email, (e.event_type = 'complaint') desc
  ) e
 where s.email = e.email
   and public.suppression_strength(s.reason) < public.suppression_strength(e.reason);

create or replace function public.suppress_email(p_email text, p_reason text default 'manual',
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

create or replace function public.unsuppress_email(p_email text, p_note text,
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

--------------------------------------------------------------------------------------------------
-- 8. One-click unsubscribe keeps working. An expired token answered 410 to a real RFC 8058 POST,
-- but mail stays in inboxes for months and a token can only unsubscribe its own address: the
-- POST is honoured whatever the token's age. A used token whose address is no longer suppressed
-- as an opt-out (lifted since, with renewed consent) unsubscribes again: the link still means it.

create or replace function public.unsubscribe_by_token(p_token_id uuid, p_method text,
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

create or replace function public.unsubscribe_token_status(p_token_id uuid, out outcome text,
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

-- The purge deleted every token some days after expiry, so a one-click POST from an old email
-- answered 404 and unsubscribed nobody. A token that no longer exists cannot be honoured, so a
-- token whose email may be in an inbox is never deleted (it lives as long as its campaign, like
-- campaign_recipients). Only tokens no email carried are deleted: those of recipients suppressed
-- at generation (final: never sent) and those whose recipient is gone (customer deleted). Each
-- token is looked at during the 7 days after its grace ends (the task runs daily), not on every
-- run for ever: a token kept then is kept for good.
create or replace function public.expire_unsubscribe_tokens(p_grace interval, p_limit integer)
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

--------------------------------------------------------------------------------------------------
-- 9. Campaign identity: one campaign per (month, week of the month), unless the operator forces
-- it, and a date that contradicts the week is refused. The week of a date is its seven-day block
-- of the month: days 1-7 week 1, 8-14 week 2, 15-21 week 3, 22-28 week 4, 29-31 week 5 (no
-- campaign). For a Monday it is the Monday count, the weekly cron's rule
-- (tasks/generate_weekly_campaign.ts weekOfMonth); a Sunday the 6th and a Monday the 7th are both
-- week 1, so a campaign generated on the one stops a second on the other.
-- A check inside generate_campaign under a lock per (month, week), not a unique index: a forced
-- second campaign is allowed, and campaigns inserted by hand (tests, repairs) are not generation.

create or replace function public.week_of_month(p_date date) returns integer
  language sql immutable parallel safe as $$
  select (extract(day from p_date)::integer + 6) / 7;
$$;
comment on function public.week_of_month(date) is
  'The week of the month a date falls in: days 1-7 -> 1 ... 22-28 -> 4, 29-31 -> 5. For a Monday, the Monday count.';

create or replace function public.check_campaign_identity(p_caller text, p_week integer,
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

create or replace function public.generate_campaign(p_week_of_month integer, p_generated_date date,
                                                    p_send boolean, p_token_ttl interval,
                                                    p_public_url text, p_force boolean default false)
  returns uuid language plpgsql volatile as $$
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
    -- Already generated (a rerun, or a second worker): return the existing one unchanged.
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

  insert into public.campaigns (campaign_name, week_of_month, generated_date, template_id)
  values (format('week %s, %s', p_week_of_month, p_generated_date), p_week_of_month,
          p_generated_date, v_template.template_id)
  on conflict (week_of_month, generated_date) do nothing
  returning campaign_id into v_campaign_id;

  if v_campaign_id is null then
    -- Inserted by hand meanwhile (generation itself is serialised by the lock above).
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
   where c.is_active
   -- In primary key order: the key (campaign_id, customer_id), campaign_recipients_pending_idx
   -- and campaign_recipients_customer_id_idx are then filled left to right instead of at random
   -- places (recipients 22% faster at 300,000 customers).
   order by c.customer_id;

  if p_send then
    update public.campaigns set status = 'queued' where campaign_id = v_campaign_id;
  end if;
  return v_campaign_id;
end;
$$;
comment on function public.generate_campaign(integer, date, boolean, interval, text, boolean) is
  'Creates the week''s campaign with one recipient and one unsubscribe token per active customer; suppressed addresses are recorded as suppressed. Queues it when p_send. Idempotent per week and date. Unless p_force: the date must be in the week of the month (week_of_month), and a (month, week) with a campaign on another date gets no second one.';

create or replace function public.enqueue_generate_campaign(p_week integer, p_date date default null,
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
revoke all on function public.enqueue_generate_campaign(integer, date, boolean, boolean) from public;
grant all on function public.enqueue_generate_campaign(integer, date, boolean, boolean) to mailer_operator;
