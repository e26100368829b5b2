-- Compliance (issue 15, items 7-9): suppression strength, one-click unsubscribe that keeps
-- working, one campaign per week of the month. Rerun-safe: drop ... if exists in reverse
-- dependency order, create or replace.

drop trigger if exists _150_keep_strongest on public.suppression_list;
drop trigger if exists _150_never_weaken on public.suppression_list;
drop function if exists public.tg_suppression_list__keep_strongest();
drop function if exists public.tg_suppression_list__never_weaken();

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
grant execute on function public.tg_suppression_list__keep_strongest() to mailer_operator;

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
