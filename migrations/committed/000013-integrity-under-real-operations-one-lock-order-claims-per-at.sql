--! Previous: sha1:9d5191e5b65ccbdfc74432fdb86b021783627152
--! Hash: sha1:a3bcb6e2c093d3af2b28503d6c46f5b8c853aafd
--! Message: Integrity under real operations: one lock order, claims per attempt, dead workers' claims, paused campaigns spend no slots, reconciliation by evidence, stronger suppressions, campaign identity, events in their own runner

--! split: 1-current.sql
-- Enter migration here (rerun-safe: drop ... if exists, create or replace)

-- Pausing, queueing or resuming a done campaign failed with "RAISE statement option cannot be
-- null" (the hint had no case for done): every state now has a hint.
create or replace function public.set_campaign_status(p_campaign_id uuid, p_action text,
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

-- Paused campaigns no longer spend the global send rate (issue 15, item 4). A paced job reserved
-- its send slot and slept until it before it looked at its campaign, so pausing a big campaign
-- drained its queued jobs at the account's pace (100,000 jobs at 14/s: two hours in which every
-- other campaign starved). Now:
-- - pausing a campaign (by hand, or any automatic pause) removes its send jobs that are waiting,
--   so the jobs of other campaigns are next; resuming queues its pending recipients again, as
--   before;
-- - a paced job reserves its slot through reserve_send_slot_for, which gives no slot to a
--   recipient that is not pending or whose campaign is not sendable: such a job claims at once
--   (the claim decides what to do, as for an unpaced job) and ends without spending the rate.
create or replace function public.reserve_send_slot_for(p_rate double precision,
                                                        p_campaign_id uuid, p_customer_id uuid)
  returns timestamptz language sql volatile as $$
  select public.reserve_send_slot(p_rate)
   where exists (select 1 from public.campaign_recipients r
                   join public.campaigns c on c.campaign_id = r.campaign_id
                  where r.campaign_id = p_campaign_id and r.customer_id = p_customer_id
                    and r.recipient_status = 'pending' and c.status in ('queued', 'sending'));
$$;
comment on function public.reserve_send_slot_for(double precision, uuid, uuid) is
  'A pacing slot for this recipient, or null when it is not pending or its campaign is not '
  'queued or sending (the job then claims at once and ends without spending the rate).';

create or replace function public.tg_campaigns__dequeue_sends() returns trigger
  language plpgsql volatile as $$
begin
  -- By job key (enqueue_campaign_sends names every job 'send_recipient:<campaign>:<customer>').
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
drop trigger if exists _500_dequeue_sends on public.campaigns;
create trigger _500_dequeue_sends after update of status on public.campaigns
  for each row when (new.status = 'paused' and old.status is distinct from 'paused')
  execute function public.tg_campaigns__dequeue_sends();

--! split: 2-claims.sql
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

--! split: 3-reconcile.sql
-- Reconciliation uses only a recipient's own evidence; the opt-in automatic resend (issue 15,
-- item 6). Rerun-safe: functions dropped first (reverse dependency order), then created.
--
-- reconcile_in_doubt took any event for the same address, from any campaign and with no upper
-- time bound: an event of campaign B settled campaign A's recipient and gave it B's message id,
-- and with one address in doubt in two campaigns both took the same event, the unique index on
-- ses_message_id failed the whole statement, and nothing anywhere was reconciled again.

drop function if exists public.auto_resend_in_doubt(interval, interval);
drop function if exists public.reconcile_in_doubt();
drop function if exists public.reconcile_in_doubt(interval);
drop function if exists public.in_doubt_evidence(uuid, uuid, text, timestamptz, interval);
drop function if exists public.ses_event_sent_at(jsonb);
drop function if exists public.ses_event_tags(jsonb);

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

-- The automatic decision is recorded like an operator's, under its own action.
-- Several current migration files extend this list: add to whatever it allows now.
do $$
declare
  v_actions text[];
begin
  select array_agg(m[1] order by m[1]) into v_actions
    from pg_catalog.pg_constraint k,
         regexp_matches(pg_catalog.pg_get_constraintdef(k.oid), '''([a-z_]+)''', 'g') m
   where k.conrelid = 'public.operator_actions'::regclass
     and k.conname = 'operator_actions_action_check';
  if not 'auto_resend' = any(v_actions) then
    alter table public.operator_actions drop constraint operator_actions_action_check;
    execute format('alter table public.operator_actions add constraint operator_actions_action_check '
                   'check (action in (%s))',
                   (select string_agg(quote_literal(a), ', ') from unnest(v_actions || 'auto_resend'::text) a));
  end if;
end
$$;
comment on table public.operator_actions is
  'Audit trail of operator acts (unsuppress, in-doubt decisions, job retries, campaign control), '
  'whoever made them: CLI or psql; and of the automatic decisions taken in their place '
  '(auto_resend: IN_DOUBT_RESEND_AFTER_MINUTES, details.automatic true).';

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

-- apply_ses_event had the same flaw through the message id: it looked the recipient up by message
-- id first, so an event whose message id the old reconciliation had given to another campaign's
-- recipient was applied to that one. The tags name the recipient the message was sent to; the
-- message id is the fallback for identity notifications (no tags). A message id is recorded only
-- when no other recipient holds it, so such an event is never refused by the unique index.
create or replace function public.apply_ses_event(
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

--! split: 4-compliance.sql
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

--! split: 5-events.sql
-- /metrics counted the in-doubt recipients of every campaign ever sent on every scrape: a scan of
-- the whole campaign_recipients table (millions of rows after a year of weekly campaigns). In-doubt
-- recipients are few; a partial index makes the count, and in_doubt_recipients(), read only them.
create index if not exists campaign_recipients_in_doubt_idx
  on public.campaign_recipients (last_attempt_at)
  where recipient_status = 'in_doubt';
comment on index public.campaign_recipients_in_doubt_idx is
  'In-doubt recipients only (few): the /metrics count and the in-doubt listings read this.';
