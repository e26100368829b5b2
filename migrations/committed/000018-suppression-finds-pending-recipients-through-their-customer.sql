--! Previous: sha1:fd84e33112d49f64d31a44f0b44a1eea3f75c425
--! Hash: sha1:131b67ad73a28fc486d8c4e30f013a26249fce8a
--! Message: Suppression finds pending recipients through their customer

--! split: 1-current.sql
-- Enter migration here (rerun-safe: drop ... if exists, create or replace)

-- A suppression finds the address's pending recipients through the customer who has it, and the
-- index of every pending recipient by address goes. That index took its entries in no order (1M
-- random inserts a campaign): generation of 1,000,000 recipients ran 17.6-18.8 s without it
-- against 20.0-21.2 s with it, alternated in one run (bench/scratch, 2026-12-07), and 145 MB
-- less WAL; it served only this trigger. A recipient keeps the address it was generated with,
-- and its customer may have changed address since: such a recipient is not found here, and its
-- claim, which checks the suppression list again at send time, marks it suppressed instead.
create or replace function public.tg_suppression_list__suppress_pending() returns trigger
  language plpgsql as $$
begin
  update public.campaign_recipients r
     set recipient_status = 'suppressed', last_error = 'suppressed: ' || new.reason
    from public.customers c
   where c.email = new.email and r.customer_id = c.customer_id
     and r.email = new.email and r.recipient_status = 'pending';
  return null;
end;
$$;
comment on function public.tg_suppression_list__suppress_pending() is
  'A new suppression stops the address''s still-pending recipients in every campaign (found '
  'through the customer with that address; one generated with an address its customer no longer '
  'has is suppressed by its claim instead).';
drop index if exists public.campaign_recipients_pending_email_idx;
