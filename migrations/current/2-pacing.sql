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
