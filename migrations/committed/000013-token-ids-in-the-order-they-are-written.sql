--! Previous: sha1:e7a673753d2269eccbe4412af4464a94cc50be60
--! Hash: sha1:17af8dd7e691223d40d6b42909ab844cae4f798f
--! Message: Token ids in the order they are written

--! split: 1-current.sql
-- Token ids in the order they are written: each chunk's tokens carry the chunk's millisecond as
-- their first 48 bits (RFC 9562's version 7 layout) and keep 74 random bits of gen_random_uuid().
-- Tokens of mail that went out are kept, so the tokens' primary key grows with every campaign,
-- and random ids put each new token at a random leaf of it. bench/generation-history.ts, the
-- weekly campaign of 1,000,000 generated eight weeks running: week 8 logged 257,000 full-page
-- images and 2.34 GB of WAL in 32.2 s with random ids, 72,000 and 1.33 GB in 27.5 s with these
-- (week 1: 1.26 and 1.23 GB). A chunk's tokens now land at the index's right end.

create or replace function public.generate_campaign_chunk(p_campaign_id uuid, p_token_ttl interval,
                                                          p_public_url text,
                                                          p_limit integer default null,
                                                          p_lane integer default null)
  returns integer
  language plpgsql
  as $_$
declare
  v_lane public.campaign_generation_lanes;
  v_from uuid;
  v_count integer;
  v_last uuid;
  v_limit integer := coalesce(p_limit, public.mailer_setting('generation_chunk', 50000));
  -- 'tttttttt-tttt-7': the chunk's Unix time in milliseconds (48 bits) and the version digit.
  v_token_prefix text := regexp_replace(
    lpad(to_hex((extract(epoch from clock_timestamp()) * 1000)::bigint), 12, '0'),
    '^(.{8})(.{4})$', '\1-\2-7');
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
      select c.customer_id, c.email, c.name, c.company, c.country,
             -- The prefix, then a random UUID from its version digit on: 74 random bits.
             ($7 || substr(gen_random_uuid()::text, 16))::uuid as token_id
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
    using v_from, v_lane.upper_bound, v_limit, p_campaign_id, p_token_ttl, p_public_url,
          v_token_prefix;

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
$_$;
