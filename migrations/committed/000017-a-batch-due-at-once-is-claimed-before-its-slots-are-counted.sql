--! Previous: sha1:a26749c0a905c03c3b8faeb787f52e77fc515138
--! Hash: sha1:fd84e33112d49f64d31a44f0b44a1eea3f75c425
--! Message: A batch due at once is claimed before its slots are counted

--! split: 1-current.sql
-- When every slot of a batch is due at once, the claim decides who gets one. The pacer is then
-- moved for the whole batch first, claim_recipients runs, and the slots of the recipients it did
-- not claim are given back. The pass that reserve_send_slots_for makes over the recipients before
-- it reserves (pending, campaign sendable) repeats what the claim checks under its row locks; at
-- a rate that does not bind it cost the paced path ~50 us of PostgreSQL time per send over the
-- unpaced one (223 against 170 us, bench/send-throughput.ts, 2026-12-07). A batch whose last
-- slot is not due within p_lead, and the first batch ever (no pacer row), reserve as before.
-- The lock order is unchanged: the pacer row, then claim_recipients' campaigns and recipients.
create or replace function public.reserve_send_slots_and_claim(p_rate double precision,
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
  v_step interval := make_interval(secs => 1 / p_rate);
  v_count integer := coalesce(cardinality(p_campaign_ids), 0);
  v_first timestamptz;
  v_slots timestamptz[];
  v_due integer[];
begin
  -- All due: the batch's slots taken under the pacer row's lock, held to the commit.
  update public.send_pacer p
     set next_slot = greatest(p.next_slot, clock_timestamp()) + v_count * v_step, rate = p_rate
   where p.id and v_count > 0
     and greatest(p.next_slot, clock_timestamp()) + (v_count - 1) * v_step
         <= clock_timestamp() + p_lead
  returning p.next_slot - v_count * v_step into v_first;
  if found then
    -- The claimed ones get the first slots in order; the rest are given back in the same
    -- statement (no other transaction can have moved the row since).
    return query
      with c as materialized (
        select c.*,
               count(*) filter (where c.outcome = 'claimed') over (order by c.ord) as nth,
               count(*) filter (where c.outcome = 'claimed') over () as claims
          from public.claim_recipients(p_campaign_ids, p_customer_ids, p_lease) c
      ), given_back as (
        update public.send_pacer p
           set next_slot = p.next_slot - (v_count - (select max(c.claims) from c)) * v_step
         where p.id and (select max(c.claims) from c) < v_count
      )
      select c.ord, case when c.outcome = 'claimed' then v_first + (c.nth - 1) * v_step end,
             c.outcome = 'claimed', c.outcome, c.email, c.template_data, c.provider,
             c.provider_template_name, c.template_id, c.attempt_count
        from c
       order by c.ord;
    return;
  end if;

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
  'Send slots for a batch at p_rate with the claims of the recipients whose slot is due within '
  'p_lead, in one transaction: row ord (1-based) has its slot (null: not pending or not '
  'sendable) and, when claimed is true, its claim as claim_recipients returns it. When every '
  'slot is due, all are claimed and only the claimed get slots; otherwise reserve_send_slots_for, '
  'then claim_recipients for the due ones. Committed synchronously when anything was claimed. '
  'Callers pass the arrays sorted by (campaign_id, customer_id).';
