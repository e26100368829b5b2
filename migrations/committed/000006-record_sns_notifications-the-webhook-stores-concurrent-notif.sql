--! Previous: sha1:d380c3ed19fb5f563351a83f4056a62241e035e5
--! Hash: sha1:b05198fdb1adc033262d4baaabdec117ae510a28
--! Message: record_sns_notifications: the webhook stores concurrent notifications in one statement

--! split: 1-current.sql
-- The webhook stores the notifications that arrive at the same moment together: one statement,
-- one commit and one NOTIFY for many requests (src/http/ses-webhook.ts). One commit per request
-- serialised the webhook on the commit lock that add_job's NOTIFY takes.
create or replace function public.record_sns_notifications(
  p_message_ids text[], p_topic_arns text[], p_envelopes json[]
) returns table (ord integer, fresh boolean)
  language plpgsql volatile as $$
declare
  v_fresh integer[];
begin
  if cardinality(p_message_ids) is distinct from cardinality(p_topic_arns)
     or cardinality(p_message_ids) is distinct from cardinality(p_envelopes) then
    raise exception 'record_sns_notifications: % message ids, % topics, % envelopes',
      cardinality(p_message_ids), cardinality(p_topic_arns), cardinality(p_envelopes)
      using errcode = '22023';
  end if;
  -- A MessageId twice in one batch (SNS redelivering while the first is in flight) is fresh once:
  -- ON CONFLICT DO NOTHING skips the second row, and the first ord of each inserted id is fresh.
  with input as (
    select i.message_id, i.topic_arn, i.n::integer as n
      from unnest(p_message_ids, p_topic_arns) with ordinality as i(message_id, topic_arn, n)
  ), inserted as (
    insert into public.sns_messages (sns_message_id, topic_arn)
    select input.message_id, input.topic_arn from input order by input.n
    on conflict (sns_message_id) do nothing
    returning sns_message_id
  )
  select coalesce(array_agg(first_ord order by first_ord), '{}') into v_fresh
    from (select min(input.n) as first_ord
            from input join inserted on inserted.sns_message_id = input.message_id
           group by input.message_id) f;
  if cardinality(v_fresh) > 0 then
    perform graphile_worker.add_jobs(array(
      select row('process_ses_event', p_envelopes[o], null, null, null, null, null, null)
               ::graphile_worker.job_spec
        from unnest(v_fresh) o order by o));
  end if;
  return query
    select s.n, s.n = any(v_fresh)
      from generate_subscripts(p_message_ids, 1) as s(n) order by s.n;
end;
$$;
comment on function public.record_sns_notifications(text[], text[], json[]) is
  'Batch form of record_sns_notification: remembers each verified SNS Notification and enqueues '
  'one process_ses_event per new MessageId, in one statement. Returns (ord, fresh) per input, '
  'ord 1-based; fresh is false for a MessageId seen before (or earlier in the same batch).';
