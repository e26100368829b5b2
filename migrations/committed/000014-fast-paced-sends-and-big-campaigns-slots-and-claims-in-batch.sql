--! Previous: sha1:a3bcb6e2c093d3af2b28503d6c46f5b8c853aafd
--! Hash: sha1:c797a4ce33e86864aa9f349e53b80ec853363239
--! Message: Fast paced sends and big campaigns: slots and claims in batches, send jobs fed in a window, campaigns generated in chunks

--! split: 1-current.sql
-- Enter migration here (rerun-safe: drop ... if exists, create or replace)

--! split: 2-pacing.sql
-- Paced sends reserve their slots in batches (issue 16, targets 1-3). Each paced job used to reserve
-- its slot in a round trip of its own to the one shared row, send_pacer, with a synchronous
-- commit: at a rate that never binds, that round trip was the paced path's largest cost, and with
-- two processes every send queued on the row's lock. Now the jobs of a process that ask for a
-- slot at the same moment share one call, which checks each recipient as reserve_send_slot_for
-- did (no slot for a recipient that is not pending or a campaign that is not sendable) and moves
-- the pacer on once, by as many slots as recipients that get one.
-- Rerun-safe: create or replace only.

create or replace function public.reserve_send_slots_for(p_rate double precision,
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

-- A send that would leave late takes a new slot (tasks/send_recipient.ts). These re-reservations
-- were one round trip each with a synchronous commit holding the pacer row's lock: under load,
-- when claims themselves take longer than a slot's 20 ms margin, every send took one and they
-- queued on that lock (Lock:transactionid on reserve_send_slot, 71% of the sampled backend time at
-- R = 1,000,000/s). Now the jobs of a process that need a new slot at the same moment share one
-- call. Its commit does not wait for the WAL flush either: a reservation lost in a server crash
-- can hand out again only slots of the last ~0.6 s (three wal_writer_delay), which have passed by
-- the time the server has recovered and the workers claim again.
create or replace function public.reserve_send_slots(p_rate double precision, p_count int)
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

--! split: 3-feeder.sql
-- Issue 16, targets 4 and 5: big campaigns start at once, with a bounded job queue.
--
-- 1. Generation in chunks. begin_campaign_generation() creates the campaign (generating = true)
--    with a first small chunk of recipients and queues it, in one transaction; then
--    generate_campaign_chunk() adds the rest in customer_id order, one transaction per chunk,
--    and the last chunk sets generating = false. Sends start as soon as the first chunk commits.
--    A campaign still generating is never done (finish_campaign_if_complete, the transition
--    trigger). A generation killed half-way is resumed by the job's retry (generate_campaign
--    finds its campaign still generating and carries on) and, if that job is gone, by the sweep.
-- 2. A feeder instead of one job per recipient at once. Entering queued feeds the first batch in
--    the same transaction and adds a feed_campaign job (one waiting per campaign); that job tops the
--    campaign up to a window of waiting send jobs and reschedules itself while anything is left
--    to feed. campaign_feeds.fed_through is the feeder's cursor: pending recipients at or below it
--    have (or had) a job. Pause removes the (at most window) waiting jobs; resume resets the
--    cursor and feeds again from the start. The once-only guarantee is untouched: it is the
--    claim under the recipient's row lock; a duplicate job finds the recipient claimed.

drop function if exists public.requeue_orphaned_recipients();
drop function if exists public.ensure_campaign_feeders();
drop function if exists public.feed_campaign_sends(uuid, integer, integer);
drop function if exists public.mailer_setting(text, integer);
drop function if exists public.ensure_campaign_feeder(uuid, interval);
drop function if exists public.generate_campaign_chunk(uuid, interval, text, integer);
drop function if exists public.begin_campaign_generation(integer, date, boolean, interval, text, boolean, integer);
drop table if exists public.campaign_feeds;
drop function if exists public.feed_lock_key(uuid);
drop function if exists public.generation_lock_key(uuid);

alter table public.campaigns add column if not exists generating boolean not null default false;
comment on column public.campaigns.generating is
  'True while generation is still adding recipients (in chunks, in customer_id order); such a campaign may send but is never done.';

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

-- Sizes of the feeder's window and of generation's chunks: the defaults below, unless the
-- database (or role) sets mailer.<name> (the tests make them small to exercise the chunking).
create or replace function public.mailer_setting(p_name text, p_default integer) returns integer
  language sql stable
  as $$ select coalesce(nullif(current_setting('mailer.' || p_name, true), '')::integer, p_default) $$;
comment on function public.mailer_setting(text, integer) is
  'The integer setting mailer.<p_name> (ALTER DATABASE ... SET), or p_default when unset.';

-- The lock every change of a campaign's feeding takes: feeders try it (and leave when it is
-- taken), status changes wait for it, so a feeder never writes a cursor from before a resume.
create or replace function public.feed_lock_key(p_campaign_id uuid) returns bigint
  language sql immutable
  as $$ select (7302::bigint << 32) | (hashtext(p_campaign_id::text)::bigint & 4294967295) $$;
comment on function public.feed_lock_key(uuid) is
  'The advisory lock key that serialises feeding a campaign with its status changes.';

create or replace function public.ensure_campaign_feeder(p_campaign_id uuid,
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

create or replace function public.feed_campaign_sends(p_campaign_id uuid,
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
    -- empty table, and its job fetch would be planned as a scan and sort (migration 000009).
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

create or replace function public.tg_campaigns__enqueue_sends() returns trigger
  language plpgsql volatile
  as $$
begin
  -- Waits for a feeder at work, then feeds from the start: the pause removed the waiting jobs.
  perform pg_advisory_xact_lock(public.feed_lock_key(new.campaign_id));
  update public.campaign_feeds set fed_through = null, updated_at = now()
   where campaign_id = new.campaign_id;
  -- A first batch in this transaction (a small campaign is queued whole, as before), then the
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

create or replace function public.tg_campaigns__dequeue_sends() returns trigger
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

create or replace function public.tg_campaigns__check_transition() returns trigger
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

create or replace function public.finish_campaign_if_complete(p_campaign_id uuid) returns boolean
  language plpgsql volatile
  as $$
begin
  if (select r.customer_id from public.campaign_recipients r
       where r.campaign_id = p_campaign_id and r.recipient_status = 'pending'
       order by r.campaign_id desc, r.customer_id desc limit 1) is not null then
    return null;
  end if;
  -- Waits for every outcome still being recorded (see record_send_outcome).
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
  'Marks a queued/sending campaign done when its generation is finished and no recipient is pending or sending; waits for outcomes being recorded (record_send_outcome) so that the last of them is never missed.';

-- Serialises the chunks of one campaign's generation (a retried job and the one it replaced).
create or replace function public.generation_lock_key(p_campaign_id uuid) returns bigint
  language sql immutable
  as $$ select (7303::bigint << 32) | (hashtext(p_campaign_id::text)::bigint & 4294967295) $$;
comment on function public.generation_lock_key(uuid) is
  'The advisory lock key that serialises the generation chunks of a campaign.';

create or replace function public.generate_campaign_chunk(p_campaign_id uuid, p_token_ttl interval,
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
   -- In primary key order: the indexes fill left to right (migration 000008).
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

create or replace function public.begin_campaign_generation(p_week_of_month integer,
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

create or replace function public.generate_campaign(p_week_of_month integer, p_generated_date date,
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

create or replace function public.requeue_orphaned_recipients() returns integer
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

create or replace function public.ensure_campaign_feeders() returns integer
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
