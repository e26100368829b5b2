--! Previous: sha1:0e9debdfbf36848f8b3688ff5de1f6daeb66a07c
--! Hash: sha1:7c7a701aa1a35e609704f073a6fb032306f94477
--! Message: SES event addresses in the suppression trigger's lock order

--! split: 1-current.sql
-- An SES event's addresses in the suppression trigger's lock order. _150_keep_strongest locks a
-- bucket (hashtext(email) & 255) for each row it inserts, in the order the rows come, and
-- apply_ses_event inserts an event's addresses in the order ses_event_addresses gives them. By
-- address, two events naming addresses whose buckets cross (one a in X then c in Y, the other
-- e in Y then f in X) could each hold one bucket and wait for the other's: a deadlock, and one
-- event failed and retried. By bucket first, every writer takes its buckets in one order.

create or replace function public.ses_event_addresses(p_event jsonb, p_type text) returns text[]
  language sql immutable as $$
  with listed as (
    select case p_type
             when 'bounce' then p_event #> '{bounce,bouncedRecipients}'
             when 'complaint' then p_event #> '{complaint,complainedRecipients}'
             when 'delivery_delay' then p_event #> '{deliveryDelay,delayedRecipients}'
             when 'delivery' then p_event #> '{delivery,recipients}'
           end as list
  ), raw as (
    select coalesce(e ->> 'emailAddress', e #>> '{}') as address
      from listed,
           jsonb_array_elements(case when jsonb_typeof(listed.list) = 'array' then listed.list
                                     else '[]' end) e
    union all
    -- Only when the detail names nobody.
    select d #>> '{}'
      from jsonb_array_elements(case when jsonb_typeof(p_event #> '{mail,destination}') = 'array'
                                     then p_event #> '{mail,destination}' else '[]' end) d
     where not exists (select 1 from listed
                        where jsonb_typeof(listed.list) = 'array' and jsonb_array_length(listed.list) > 0)
  ), addresses as (
    select distinct x.a
      from raw, lateral (select lower(btrim(coalesce(substring(address from '<([^<>]+)>'), address)))) x(a)
     where x.a like '%_@_%'
  )
  -- The order _150_keep_strongest locks in: its bucket, then the address.
  select coalesce(array_agg(a order by hashtext(a) & 255, a), '{}') from addresses;
$$;
comment on function public.ses_event_addresses(jsonb, text) is
  'Recipient addresses an SES event is about (bare, lowercase), from its detail or mail.destination, '
  'in the suppression trigger''s lock order (hashtext(email) & 255, then the address).';
