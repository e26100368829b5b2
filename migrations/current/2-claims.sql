-- Claims and outcomes: one lock order, outcomes tied to their claim, a dead worker's claims in
-- doubt at once (issue 15, items 1, 2, 3 and 5). Rerun-safe: the old signatures are dropped first,
-- the column is added if missing, every function is created or replaced.
--
-- The lock order, for every function that takes more than one of these locks:
--   1. campaign rows, in campaign_id order: a claim locks its campaign (only one that is not
--      sending) and an outcome batch the campaigns it pauses, before any recipient, in the one
--      mode their update needs (FOR NO KEY UPDATE), never a share lock they would later upgrade;
--   2. recipient rows, in (campaign_id, customer_id) order;
--   3. the campaigns' "finishing" advisory locks (7301, hashtext(campaign_id)), in campaign_id
--      order: shared by an outcome batch, exclusive by finish_campaign_if_complete, the sweep and
--      release_dead_workers (one campaign after another, in campaign_id order).
-- finish_campaign_if_complete updates the campaign row after its advisory lock, but only a
-- campaign with no recipient sending, so never one an outcome batch (which records sending
-- recipients) is holding or waiting for.

drop function if exists public.record_send_result(uuid, uuid, text, text, text, timestamptz);
drop function if exists public.record_send_outcome(uuid, uuid, text, text, text, timestamptz);
drop function if exists public.record_send_outcomes(uuid[], uuid[], text[], text[], text[],
                                                    timestamptz[]);

alter table public.campaign_recipients add column if not exists claimed_by text;
comment on column public.campaign_recipients.claimed_by is
  'The worker process that made the last claim (worker_processes.process_id, the application_name '
  'of its connections); when that process is gone, release_dead_workers puts its claims in doubt.';

-- Item 1: claims that waited for a resume in progress each held a share lock on the campaign and
-- then all updated it to sending: about 15 "deadlock detected" per resume with 3 paced workers.
create or replace function public.claim_recipient(p_campaign_id uuid, p_customer_id uuid,
                                                  p_lease interval, p_rate double precision)
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
  -- two statements), so ending it as "paused" would leave its recipient pending with no job
  -- (migration 000010). FOR NO KEY UPDATE, the lock the update to sending takes, so that two
  -- claims never both hold a weaker lock and then both wait to upgrade it.
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

  if coalesce(p_rate, 0) > 0 then
    v_result.send_at := public.reserve_send_slot(p_rate);
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
comment on function public.claim_recipient(uuid, uuid, interval, double precision) is
  'Claims a pending recipient for sending under its row lock (commit before calling SES), naming '
  'the claiming process in claimed_by. A claim older than p_lease with no outcome becomes '
  'in_doubt, never a second send. Waits for a status change of its campaign in progress.';

create or replace function public.claim_recipients(p_campaign_ids uuid[], p_customer_ids uuid[],
                                                   p_lease interval, p_rate double precision)
  returns table(ord integer, outcome text, email text, template_data jsonb, provider text,
                provider_template_name text, template_id uuid, send_at timestamptz,
                attempt_count integer)
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
    send_at := case when coalesce(p_rate, 0) > 0 then public.reserve_send_slot(p_rate) end;
    return next;
  end loop;

  for v_row in
    select k.campaign_id, k.customer_id, k.ord::integer as ord
      from unnest(p_campaign_ids, p_customer_ids) with ordinality as k(campaign_id, customer_id, ord)
     where not (k.ord::integer = any(v_claimed))
     order by k.ord
  loop
    v_claim := public.claim_recipient(v_row.campaign_id, v_row.customer_id, p_lease, p_rate);
    ord := v_row.ord;
    outcome := v_claim.outcome;
    email := v_claim.email;
    template_data := v_claim.template_data;
    provider := v_claim.provider;
    provider_template_name := v_claim.provider_template_name;
    template_id := v_claim.template_id;
    send_at := v_claim.send_at;
    attempt_count := v_claim.attempt_count;
    return next;
  end loop;
end;
$$;
comment on function public.claim_recipients(uuid[], uuid[], interval, double precision) is
  'claim_recipient for many recipients in one transaction (committed before any of them is sent): '
  'one row per array position (ord, 1-based), attempt_count naming the claim for its outcome. '
  'Callers pass them sorted by (campaign_id, customer_id).';

-- Item 3: an outcome names the attempt it belongs to. Any row that was sending or in doubt was
-- updated, so a late outcome of attempt 1 overwrote attempt 2's claim after an operator's resend.
create or replace function public.record_send_outcomes(p_campaign_ids uuid[], p_customer_ids uuid[],
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

-- Item 2: the sweep took the campaigns' exclusive locks in scan order, an outcome batch its
-- shared ones in uuid order, and a batch recording the last outcomes of two campaigns deadlocked
-- with the sweep.
create or replace function public.sweep_send_claims(p_lease interval) returns integer
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

-- Item 5: a SIGKILLed worker's claims stayed sending for the whole lease (120 s) plus up to a
-- minute of sweep. A claim names its process (claimed_by); a process without connections has
-- died, and whatever it claimed has no outcome coming.
create or replace function public.release_dead_workers() returns integer
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
