--! Previous: sha1:131b67ad73a28fc486d8c4e30f013a26249fce8a
--! Hash: sha1:aa15880ba384c2c4854cfee0b67bcae60c2ddedf
--! Message: The database's feed window caps the one passed in

--! split: 1-current.sql
-- A window passed in (the paced worker's: seconds of sends at its rate) is capped by the
-- database's mailer.feed_window; the worker no longer repeats the setting's default.
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
  v_window integer := least(public.mailer_setting('feed_window', 20000), p_window);
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
comment on function public.feed_campaign_sends(uuid, integer, integer) is
  'The feeder: tops a queued or sending campaign up to p_window (at most, and by default, '
  'mailer.feed_window, else 20,000) waiting send jobs (at most p_batch, default '
  'mailer.feed_batch, else 10,000, per call, in customer_id order, job key per recipient) and '
  'reschedules its feed_campaign job while anything is left to feed. Returns the jobs added; '
  'null when the campaign is not sendable (the feeder stops).';
