--! Previous: sha1:3dd4c1492d17cc1f7682f3130ae64969e42f20b6
--! Hash: sha1:a1247a813491da713778dda2a47eaa81d6011f4c
--! Message: Generation in lanes written at the same time

--! split: 1-current.sql
-- Generation in lanes: a campaign's customers are split at creation into mailer.generation_lanes
-- (default 2) ranges of customer_id, and the generate_campaign task writes the chunks of each
-- range in its own transaction, at the same time. One lane keeps one core of PostgreSQL busy
-- (per-row foreign-key checks and index inserts); two write a 1,000,000-customer campaign in
-- about half the time (BENCHMARKS.md, figure 3).
--
-- The feeder queues recipients in customer_id order behind one cursor, so it must never pass a
-- recipient a lane has yet to write: it feeds only up to the last recipient written below the end
-- of the lowest lane still generating (feed_campaign_sends).

create table if not exists public.campaign_generation_lanes (
  campaign_id uuid not null references public.campaigns (campaign_id) on delete cascade,
  lane integer not null check (lane >= 0),
  lower_bound uuid,
  upper_bound uuid,
  written_through uuid,
  done boolean not null default false,
  primary key (campaign_id, lane),
  check (lower_bound < upper_bound)
);
comment on table public.campaign_generation_lanes is
  'The customer_id ranges a campaign''s generation writes at the same time, one transaction per '
  'chunk each; made with the campaign (plan_campaign_generation).';
comment on column public.campaign_generation_lanes.campaign_id is 'The campaign generated.';
comment on column public.campaign_generation_lanes.lane is 'The lane''s number, from 0 in customer_id order.';
comment on column public.campaign_generation_lanes.lower_bound is
  'First customer_id of the lane (inclusive); null for lane 0: no lower bound.';
comment on column public.campaign_generation_lanes.upper_bound is
  'End of the lane (exclusive): the next lane''s lower bound; null for the last lane.';
comment on column public.campaign_generation_lanes.written_through is
  'The lane''s cursor: the last customer_id it wrote a recipient for; null before its first.';
comment on column public.campaign_generation_lanes.done is
  'The lane''s last chunk found fewer customers than a chunk holds: nothing is left in its range.';

-- Campaigns generating before this migration (none when there is no deployment) carry on as one
-- lane from their last recipient.
insert into public.campaign_generation_lanes (campaign_id, lane, written_through)
select c.campaign_id, 0,
       (select r.customer_id from public.campaign_recipients r
         where r.campaign_id = c.campaign_id
         order by r.campaign_id desc, r.customer_id desc limit 1)
  from public.campaigns c
 where c.generating
on conflict do nothing;

create or replace function public.plan_campaign_generation(p_campaign_id uuid,
                                                           p_lanes integer default null,
                                                           p_chunk integer default null)
  returns integer
  language plpgsql volatile as $$
declare
  v_lanes integer := greatest(1, coalesce(p_lanes, public.mailer_setting('generation_lanes', 2)));
  v_chunk integer := greatest(1, coalesce(p_chunk, public.mailer_setting('generation_chunk', 50000)));
  v_customers bigint;
  v_bounds uuid[] := '{}';
  v_bound uuid;
begin
  if exists (select 1 from public.campaign_generation_lanes l where l.campaign_id = p_campaign_id) then
    return (select count(*)::integer from public.campaign_generation_lanes l
             where l.campaign_id = p_campaign_id);
  end if;
  -- Ranges of equal size by customer_id, active or not (the primary key alone, an index-only
  -- scan: 0.1 s for 1,000,000), and no more lanes than chunks of work.
  select count(*) into v_customers from public.customers;
  v_lanes := least(v_lanes, greatest(1, ceil(v_customers::numeric / v_chunk)::integer));
  for k in 1 .. v_lanes - 1 loop
    select c.customer_id into v_bound from public.customers c
     order by c.customer_id offset (k * v_customers / v_lanes) limit 1;
    if v_bound is not null and (cardinality(v_bounds) = 0 or v_bound > v_bounds[cardinality(v_bounds)]) then
      v_bounds := v_bounds || v_bound;
    end if;
  end loop;
  insert into public.campaign_generation_lanes (campaign_id, lane, lower_bound, upper_bound)
  select p_campaign_id, k - 1, v_bounds[k - 1], v_bounds[k]
    from generate_series(1, cardinality(v_bounds) + 1) k
  on conflict do nothing;
  return cardinality(v_bounds) + 1;
end;
$$;
comment on function public.plan_campaign_generation(uuid, integer, integer) is
  'Splits a new campaign''s customers into p_lanes (default mailer.generation_lanes, else 2) '
  'customer_id ranges of about equal size, at most one per p_chunk customers (default '
  'mailer.generation_chunk, else 50,000); returns the number of lanes. A campaign that has lanes '
  'keeps them.';

drop function if exists public.generate_campaign_chunk(uuid, interval, text, integer);
create or replace function public.generate_campaign_chunk(p_campaign_id uuid, p_token_ttl interval,
                                                          p_public_url text,
                                                          p_limit integer default null,
                                                          p_lane integer default null)
  returns integer
  language plpgsql volatile
  -- Planned with this call's values: the lane's bounds (null or not) become index conditions.
  set plan_cache_mode = force_custom_plan
  as $$
declare
  v_lane public.campaign_generation_lanes;
  v_from uuid;
  v_inclusive boolean;
  v_count integer;
  v_limit integer := coalesce(p_limit, public.mailer_setting('generation_chunk', 50000));
begin
  -- Shared: the lanes of a campaign write at the same time; the sweep's try of the exclusive
  -- lock tells it a generator is at work.
  perform pg_advisory_xact_lock_shared(public.generation_lock_key(p_campaign_id));
  if not coalesce((select c.generating from public.campaigns c
                    where c.campaign_id = p_campaign_id), false) then
    return 0;
  end if;
  -- The lane's row lock keeps its chunks one at a time. Without p_lane: the first one not done.
  select l.* into v_lane from public.campaign_generation_lanes l
   where l.campaign_id = p_campaign_id and not l.done
     and (p_lane is null or l.lane = p_lane)
   order by l.lane limit 1
     for update;
  if not found then
    return 0;
  end if;
  v_from := coalesce(v_lane.written_through, v_lane.lower_bound);
  v_inclusive := v_lane.written_through is null;

  -- Token ids drawn here, so recipients need no join back to the tokens by email.
  with chunk as materialized (
    select c.customer_id, c.email, c.name, c.company, c.country, gen_random_uuid() as token_id
      from public.customers c
     where c.is_active
       and (v_from is null or c.customer_id >= v_from)
       and (v_inclusive or c.customer_id <> v_from)
       and (v_lane.upper_bound is null or c.customer_id < v_lane.upper_bound)
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
   -- In primary key order: the indexes fill left to right.
   order by k.customer_id;
  get diagnostics v_count = row_count;

  update public.campaign_generation_lanes l
     set done = v_count < v_limit,
         written_through = coalesce((
           select r.customer_id from public.campaign_recipients r
            where r.campaign_id = p_campaign_id
              and (v_from is null or r.customer_id >= v_from)
              and (v_lane.upper_bound is null or r.customer_id < v_lane.upper_bound)
            order by r.campaign_id desc, r.customer_id desc limit 1), l.written_through)
   where l.campaign_id = v_lane.campaign_id and l.lane = v_lane.lane;

  if v_count < v_limit then
    -- The last lane to finish ends the generation. The campaign row's lock orders lanes that
    -- finish together: the second one sees the first one's lane done.
    perform 1 from public.campaigns c where c.campaign_id = p_campaign_id for no key update;
    if not exists (select 1 from public.campaign_generation_lanes l
                    where l.campaign_id = p_campaign_id and not l.done) then
      update public.campaigns set generating = false where campaign_id = p_campaign_id;
      -- Every recipient may have been sent (or suppressed) before generation ended.
      perform public.finish_campaign_if_complete(p_campaign_id);
    end if;
  end if;
  return v_count;
end;
$$;
comment on function public.generate_campaign_chunk(uuid, interval, text, integer, integer) is
  'Adds the next p_limit (default mailer.generation_chunk, else 50,000) active customers of lane '
  'p_lane (default: the first lane not done), in customer_id order, to a generating campaign, each '
  'with its unsubscribe token. The chunk that finds fewer ends its lane, and the last lane to end '
  'ends the generation (generating = false) and finishes the campaign if nothing is left to send. '
  'Returns the recipients added; 0 for a lane done or a campaign not generating.';

create or replace function public.begin_campaign_generation(p_week_of_month integer,
                                                            p_generated_date date,
                                                            p_send boolean, p_token_ttl interval,
                                                            p_public_url text,
                                                            p_force boolean default false,
                                                            p_first_chunk integer default null)
  returns uuid
  language plpgsql volatile as $$
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

  -- The lanes with the campaign: the feeder reads them from its first feed on.
  perform public.plan_campaign_generation(v_campaign_id);
  -- A first chunk before queueing: the queue trigger feeds it in this transaction, so sending
  -- starts when this commits.
  perform public.generate_campaign_chunk(v_campaign_id, p_token_ttl, p_public_url,
    coalesce(p_first_chunk, public.mailer_setting('generation_first_chunk', 2000)), 0);
  if p_send then
    update public.campaigns set status = 'queued' where campaign_id = v_campaign_id;
  end if;
  return v_campaign_id;
end;
$$;

create or replace function public.generate_campaign(p_week_of_month integer, p_generated_date date,
                                                    p_send boolean, p_token_ttl interval,
                                                    p_public_url text, p_force boolean default false)
  returns uuid
  language plpgsql volatile as $$
declare
  v_campaign_id uuid;
begin
  v_campaign_id := public.begin_campaign_generation(p_week_of_month, p_generated_date, p_send,
    p_token_ttl, p_public_url, p_force);
  -- The whole campaign in this one transaction (psql, tests), lane after lane; the
  -- generate_campaign task commits chunk by chunk, its lanes at the same time instead
  -- (src/queries/campaigns.ts).
  loop
    exit when public.generate_campaign_chunk(v_campaign_id, p_token_ttl, p_public_url) = 0
          and not exists (select 1 from public.campaign_generation_lanes l
                            join public.campaigns c on c.campaign_id = l.campaign_id
                           where l.campaign_id = v_campaign_id and not l.done and c.generating);
  end loop;
  return v_campaign_id;
end;
$$;

create or replace function public.feed_campaign_sends(p_campaign_id uuid, p_window integer default null,
                                                      p_batch integer default null)
  returns integer
  language plpgsql volatile as $$
declare
  v_status text;
  v_generating boolean;
  v_fed uuid;
  v_written uuid;
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

  -- How far the recipients are written without a gap: up to the last one below the end of the
  -- lowest lane still generating (its later recipients, and the lanes above it, come after the
  -- cursor); every one when no lane below the last is generating. One statement, one snapshot:
  -- a lane that ends meanwhile is seen with all its recipients.
  select case when u.upper_bound is null then
                (select r.customer_id from public.campaign_recipients r
                  where r.campaign_id = p_campaign_id
                  order by r.campaign_id desc, r.customer_id desc limit 1)
              else
                (select r.customer_id from public.campaign_recipients r
                  where r.campaign_id = p_campaign_id and r.customer_id < u.upper_bound
                  order by r.campaign_id desc, r.customer_id desc limit 1)
         end
    into v_written
    from (select (select l.upper_bound from public.campaign_generation_lanes l
                   where l.campaign_id = p_campaign_id and not l.done
                   order by l.lane limit 1) as upper_bound) u;

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
       and r.customer_id <= v_written
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
    -- empty table, and its job fetch would be planned as a scan and sort (see
    -- enqueue_campaign_sends).
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

comment on column public.campaigns.generating is
  'True while generation is still adding recipients (in chunks, in customer_id order within each '
  'of its lanes: campaign_generation_lanes); such a campaign may send but is never done.';
