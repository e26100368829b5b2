--! Previous: sha1:7c7a701aa1a35e609704f073a6fb032306f94477
--! Hash: sha1:df06abb2a89ce103b1a78175421f62a0a8390293
--! Message: Customer ids from the clock; tokens found by campaign alone

--! split: 1-current.sql
-- Generation writes less WAL: customers' ids follow their insertion, and a campaign's tokens are
-- found by campaign, not by (campaign, email).
--
-- Generation walks the customers in customer_id order, and each recipient's foreign-key check
-- takes a key-share lock on its customer's row. With random ids (gen_random_uuid) that order
-- lands anywhere in the heap: every chunk of 50,000 touched nearly every page of customers, and
-- each page was written to the WAL in full again after every checkpoint (pg_waldump of
-- 1,000,000: 57,000 full-page images of customers, a quarter of the WAL). Ids made from the
-- clock (RFC 9562's UUIDv7 layout: the time to a fraction of a millisecond, then 62 random
-- bits) put neighbouring ids on neighbouring pages, and the customers' primary key fills left to
-- right.
-- Rows that exist keep their ids.
--
-- unsubscribe_tokens' unique (campaign_id, email) put each token at a random place of its index
-- (the email's): 17,000 full-page images and one of the seven index entries per recipient. No
-- query looks a token up by (campaign_id, email); its uniqueness holds by construction, as a
-- campaign's tokens are written by generate_campaign_chunk's one statement together with the
-- recipients, whose primary key (campaign_id, customer_id) refuses a second row for a customer,
-- and customers' emails are unique. What needs the campaign (ON DELETE CASCADE from campaigns,
-- delete_draft_campaign's count) has an index on it alone, which a campaign's tokens fill in the
-- order they are written.

create or replace function public.uuid_v7() returns uuid
  language plpgsql volatile parallel safe
  as $$
declare
  -- The time in 1/4096 ms: 48 bits of milliseconds, then 12 bits of its fraction (RFC 9562,
  -- 6.2 method 3: ids made in one millisecond keep their order too), from one clock reading.
  -- (A SQL function is inlined only without a FROM, so it would read the clock twice.)
  v_time bigint := (extract(epoch from clock_timestamp()) * 4096000)::bigint;
begin
  -- Milliseconds, the version (7), the fraction; then gen_random_uuid's last 8 bytes, whose
  -- variant bits are already RFC 9562's.
  return encode(int8send(((v_time >> 12) << 16) | 28672 | (v_time & 4095))
                || substring(uuid_send(gen_random_uuid()) from 9),
                'hex')::uuid;
end;
$$;

comment on function public.uuid_v7() is
  'A UUID in RFC 9562''s version 7 layout: 48 bits of Unix time in milliseconds, 12 bits of its fraction, then 62 random bits. Ids made one after another sort in that order.';

alter table public.customers alter column customer_id set default public.uuid_v7();

comment on column public.customers.customer_id is
  'Primary key. Made from the clock (uuid_v7): generation walks customers in this order, and it follows the order rows were stored in.';

alter table public.unsubscribe_tokens drop constraint if exists unsubscribe_tokens_campaign_email_key;
create index if not exists unsubscribe_tokens_campaign_id_idx on public.unsubscribe_tokens (campaign_id);

comment on index public.unsubscribe_tokens_campaign_id_idx is
  'A campaign''s tokens: ON DELETE CASCADE from campaigns, delete_draft_campaign''s count. A token per (campaign, email) holds by construction (generate_campaign_chunk writes them with the recipients).';
