--! Previous: sha1:59229affd6b3bae612f9876accd2cf816688a1db
--! Hash: sha1:a26749c0a905c03c3b8faeb787f52e77fc515138
--! Message: A due slot is claimed in the reservation's own statement

--! split: 1-current.sql
-- A paced send's slot and its claim in one round trip when the slot is already due. A paced job
-- reserved its slot (reserve_send_slots_for), then claimed (claim_recipients) just before the
-- slot: two round trips before its SendEmail, and two statements and commits per batch. When the
-- slot is due within p_lead (at a rate that does not bind, at once; at R = 1,000/s with the
-- default 64 jobs, slots are reserved ~30 ms ahead, inside the 50 ms the worker claims ahead),
-- the claim had nothing to wait for. Flat out the extra round trip held the paced path at
-- 2,065-2,215 sends/s while the unpaced one ran at up to 2,667/s (bench/send-throughput.ts,
-- 2026-12-07).
drop function if exists public.reserve_send_slots_and_claim(double precision, uuid[], uuid[],
                                                            interval, interval);
create function public.reserve_send_slots_and_claim(p_rate double precision,
                                                    p_campaign_ids uuid[],
                                                    p_customer_ids uuid[],
                                                    p_lease interval,
                                                    p_lead interval)
  returns table (ord integer, slot timestamptz, claimed boolean, outcome text, email text,
                 template_data jsonb, provider text, provider_template_name text,
                 template_id uuid, attempt_count integer)
  language plpgsql volatile
  set plan_cache_mode = force_generic_plan
  as $$
#variable_conflict use_column
declare
  -- reserve_send_slots_for turns synchronous_commit off for its transaction; a claim must be
  -- durable before its send, so the setting is put back when anything is claimed.
  v_sync text := current_setting('synchronous_commit');
  v_slots timestamptz[];
  v_due integer[];
begin
  select array_agg(s.slot order by s.ord) into v_slots
    from public.reserve_send_slots_for(p_rate, p_campaign_ids, p_customer_ids) s;
  select array_agg(i order by i) into v_due
    from generate_subscripts(v_slots, 1) i
   where v_slots[i] <= clock_timestamp() + p_lead;
  if coalesce(cardinality(v_due), 0) = 0 then
    return query
      select i, v_slots[i], false, null::text, null::text, null::jsonb, null::text, null::text,
             null::uuid, null::integer
        from generate_subscripts(v_slots, 1) i
       order by i;
    return;
  end if;
  perform set_config('synchronous_commit', v_sync, true);
  -- The due ones in the callers' order (sorted by key: the lock order claim_recipients expects);
  -- claim_recipients' ord is the position among them.
  return query
    with c as (
      select v_due[c.ord] as ord, c.outcome, c.email, c.template_data, c.provider,
             c.provider_template_name, c.template_id, c.attempt_count
        from public.claim_recipients(
               array(select p_campaign_ids[u.d] from unnest(v_due) with ordinality u(d, n)
                      order by u.n),
               array(select p_customer_ids[u.d] from unnest(v_due) with ordinality u(d, n)
                      order by u.n),
               p_lease) c
    )
    select i, v_slots[i], c.ord is not null, c.outcome, c.email, c.template_data, c.provider,
           c.provider_template_name, c.template_id, c.attempt_count
      from generate_subscripts(v_slots, 1) i
      left join c on c.ord = i
     order by i;
end;
$$;
comment on function public.reserve_send_slots_and_claim(double precision, uuid[], uuid[], interval,
                                                        interval) is
  'reserve_send_slots_for, and in the same transaction claim_recipients for the recipients whose '
  'slot is due within p_lead: row ord (1-based) has its slot (null: not pending or not sendable) '
  'and, when claimed is true, its claim as claim_recipients returns it. Committed synchronously '
  'when anything was claimed. Callers pass the arrays sorted by (campaign_id, customer_id).';
