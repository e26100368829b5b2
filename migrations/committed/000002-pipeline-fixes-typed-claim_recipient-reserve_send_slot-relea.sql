--! Previous: sha1:2a581e97ef39fca035f458fea857fbc0818989ab
--! Hash: sha1:551f7271865573d391b4f80bd161d81a42bb30e3
--! Message: pipeline fixes: typed claim_recipient, reserve_send_slot, release_dead_workers count

--! split: 1-pipeline.sql
-- Campaign pipeline changes (rerun-safe: create or replace)

-- Global pacing: one row holds the next free send slot; each call takes one and moves it on.
create or replace function public.reserve_send_slot(p_rate double precision) returns timestamptz
  language sql volatile as $$
  insert into public.send_pacer as p (id, next_slot)
  values (true, clock_timestamp() + make_interval(secs => 1 / p_rate))
  on conflict (id) do update
    set next_slot = greatest(p.next_slot, clock_timestamp()) + make_interval(secs => 1 / p_rate)
  returning next_slot - make_interval(secs => 1 / p_rate);
$$;
comment on function public.reserve_send_slot(double precision) is
  'Reserves the next send slot at p_rate sends per second across all workers; returns when to send.';

-- claim_recipient, typed: row(...) literals in plpgsql carry type unknown, so the result is built
-- in a variable of the declared type.
create or replace function public.claim_recipient(
  p_campaign_id uuid, p_customer_id uuid, p_lease interval, p_rate double precision
) returns public.send_claim
  language plpgsql volatile as $$
declare
  r public.campaign_recipients;
  v_campaign_status text;
  v_template public.templates;
  v_result public.send_claim;
begin
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

  select status into v_campaign_status from public.campaigns where campaign_id = p_campaign_id;
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
         last_attempt_at = now(), last_error = null
   where campaign_id = p_campaign_id and customer_id = p_customer_id;

  if v_campaign_status = 'queued' then
    update public.campaigns set status = 'sending'
     where campaign_id = p_campaign_id and status = 'queued';
  end if;

  if coalesce(p_rate, 0) > 0 then
    v_result.send_at := public.reserve_send_slot(p_rate);
  end if;

  select t.* into v_template
    from public.campaigns c join public.templates t using (template_id)
   where c.campaign_id = p_campaign_id;
  v_result.outcome := 'claimed';
  v_result.template_data := r.template_data;
  v_result.provider := v_template.provider;
  v_result.provider_template_name := v_template.provider_template_name;
  v_result.template_id := v_template.template_id;
  v_result.attempt_count := r.attempt_count + 1;
  return v_result;
end;
$$;
comment on function public.claim_recipient(uuid, uuid, interval, double precision) is
  'Claims a pending recipient for sending under its row lock (commit before calling SES). '
  'A claim older than p_lease with no outcome becomes in_doubt, never a second send.';

-- release_dead_workers: count processes, not worker ids.
create or replace function public.release_dead_workers() returns integer
  language plpgsql volatile as $$
declare
  v_ids text[];
  v_processes integer;
begin
  with dead as (
    delete from public.worker_processes w
     where not exists (select 1 from pg_stat_activity a where a.application_name = w.process_id)
    returning w.worker_ids
  )
  select coalesce(array_agg(id), '{}'), (select count(*) from dead)::integer into v_ids, v_processes
    from dead left join lateral unnest(dead.worker_ids) as id on true;
  if cardinality(v_ids) > 0 then
    perform graphile_worker.force_unlock_workers(v_ids);
  end if;
  return v_processes;
end;
$$;
comment on function public.release_dead_workers() is
  'Unlocks jobs held by worker processes that no longer have a database connection (SIGKILL, crash).';
