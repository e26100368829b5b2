--! Previous: sha1:446c7cfd21c2055eecf11413a721e4838105f15b
--! Hash: sha1:0e9debdfbf36848f8b3688ff5de1f6daeb66a07c
--! Message: Generation chunks keep the foreign-key checks' cached plans

--! split: 1-current.sql
-- generate_campaign_chunk without plan_cache_mode = force_custom_plan. A function's SET clause
-- holds for everything that runs inside it, the foreign-key checks of its inserts included: each
-- of the three checks per recipient was planned again for every row (profiled: planner and
-- relation-size calls at the top of the backend's CPU), about 40% of a chunk's time. The chunk's
-- own statement is now built for the lane's bounds and run with EXECUTE, so it is still planned
-- with them as index conditions, and the foreign-key checks keep their cached plans.

create or replace function public.generate_campaign_chunk(p_campaign_id uuid, p_token_ttl interval,
                                                          p_public_url text,
                                                          p_limit integer default null,
                                                          p_lane integer default null)
  returns integer
  language plpgsql volatile
  as $$
declare
  v_lane public.campaign_generation_lanes;
  v_from uuid;
  v_count integer;
  v_last uuid;
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

  -- Token ids drawn here, so recipients need no join back to the tokens by email. Built for the
  -- lane's bounds: only the bounds it has, as index conditions on customers' primary key.
  execute format($sql$
    with chunk as materialized (
      select c.customer_id, c.email, c.name, c.company, c.country, gen_random_uuid() as token_id
        from public.customers c
       where c.is_active %s %s
       order by c.customer_id
       limit $3
    ), tokens as (
      insert into public.unsubscribe_tokens (token_id, email, campaign_id, expires_at)
      select k.token_id, k.email, $4, now() + $5 from chunk k
    ), recipients as (
      insert into public.campaign_recipients (campaign_id, customer_id, email, recipient_status,
                                              template_data)
      select $4, k.customer_id, k.email,
             case when s.email is null then 'pending' else 'suppressed' end,
             jsonb_build_object(
               'name', k.name, 'company', k.company, 'country', k.country, 'email', k.email,
               'unsubscribe_url', rtrim($6, '/') || '/unsubscribe/' || k.token_id)
        from chunk k
        left join public.suppression_list s on s.email = k.email
       -- In primary key order: the indexes fill left to right.
       order by k.customer_id
      returning 1
    )
    select (select count(*)::int from recipients),
           (select k.customer_id from chunk k order by k.customer_id desc limit 1)
    $sql$,
    case when v_from is null then ''
         when v_lane.written_through is null then 'and c.customer_id >= $1'
         else 'and c.customer_id > $1' end,
    case when v_lane.upper_bound is null then '' else 'and c.customer_id < $2' end)
    into v_count, v_last
    using v_from, v_lane.upper_bound, v_limit, p_campaign_id, p_token_ttl, p_public_url;

  update public.campaign_generation_lanes l
     set done = v_count < v_limit,
         written_through = coalesce(v_last, l.written_through)
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
