-- Maintenance (rerun-safe: create or replace)

-- sns_messages only has to outlive SNS's redelivery window (hours); a week is generous.
create or replace function public.prune_sns_messages(p_keep interval) returns integer
  language sql volatile as $$
  with gone as (
    delete from public.sns_messages where received_at < now() - p_keep returning 1
  )
  select count(*)::integer from gone;
$$;
comment on function public.prune_sns_messages(interval) is
  'Forgets SNS MessageIds received longer ago than p_keep (redelivery dedupe only needs hours).';
