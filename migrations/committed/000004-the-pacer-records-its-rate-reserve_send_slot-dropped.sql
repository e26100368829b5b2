--! Previous: sha1:f3392c223f3217d35abf2c684f12d112873a05c8
--! Hash: sha1:3dd4c1492d17cc1f7682f3130ae64969e42f20b6
--! Message: The pacer records its rate; reserve_send_slot dropped

--! split: 1-current.sql
-- The pacer row records the rate the workers pace at (after the headroom), so that `campaign
-- status` and the console can cap an ETA by it when the rate comes from the account's
-- MaxSendRate, which only the workers know.
alter table public.send_pacer add column if not exists rate double precision;
comment on column public.send_pacer.rate is
  'Sends per second of the last reservation (the workers'' paced rate: SES_MAX_SEND_RATE or the '
  'account''s MaxSendRate, less the pacing headroom); null before the first.';

-- No caller since slots are reserved in batches (reserve_send_slots, reserve_send_slots_for).
drop function if exists public.reserve_send_slot(double precision);

create or replace function public.reserve_send_slots(p_rate double precision, p_count int)
  returns timestamptz
  language plpgsql volatile as $$
declare
  v_step interval := make_interval(secs => 1 / p_rate);
  v_first timestamptz;
begin
  perform set_config('synchronous_commit', 'off', true);
  insert into public.send_pacer as p (id, next_slot, rate)
  values (true, clock_timestamp() + p_count * v_step, p_rate)
  on conflict (id) do update
    set next_slot = greatest(p.next_slot, clock_timestamp()) + p_count * v_step, rate = p_rate
  returning p.next_slot - p_count * v_step into v_first;
  return v_first;
end;
$$;

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
    insert into public.send_pacer as p (id, next_slot, rate)
    values (true, clock_timestamp() + v_count * v_step, p_rate)
    on conflict (id) do update
      set next_slot = greatest(p.next_slot, clock_timestamp()) + v_count * v_step, rate = p_rate
    returning p.next_slot - v_count * v_step into v_first;
  end if;
  return query
    select s.ord::int, v_first + (e.nth - 1) * v_step
      from generate_subscripts(p_campaign_ids, 1) as s(ord)
      left join unnest(v_eligible) with ordinality as e(ord, nth) on e.ord = s.ord
     order by s.ord;
end;
$$;
