-- The console's pages (src/console/routes/): indexes that let each page read a bounded range,
-- whatever the size of a campaign or of the suppression list. Rerun-safe.

-- The campaign page's per-minute chart reads, per event type, the campaign's events of its last
-- minutes (src/queries/campaign-page.ts). This index serves every query the
-- (campaign_id, event_type) one did, so it replaces it rather than adding a third index to
-- maintain on each event the webhook writes.
drop index if exists public.email_events_op_campaign_idx;
create index if not exists email_events_op_campaign_time_idx
  on public.email_events_op (campaign_id, event_type, event_time);
comment on index public.email_events_op_campaign_time_idx is
  'A campaign''s events of one type in time order: the report''s counts and the console''s per-minute chart.';

-- The campaign page lists a campaign's failed and in-doubt recipients by address, a page at a
-- time: with this index a page of a 1,000,000-recipient campaign reads only the recipients an
-- operator acts on.
create index if not exists campaign_recipients_attention_idx
  on public.campaign_recipients (campaign_id, recipient_status, email)
  where recipient_status in ('failed', 'in_doubt');
comment on index public.campaign_recipients_attention_idx is
  'Failed and in-doubt recipients of a campaign by address: the console''s paginated lists.';

-- Search the suppression list by the start of an address (`like 'ann%'`), whatever the
-- database's collation: the primary key serves a prefix only under the C collation.
create index if not exists suppression_list_email_prefix_idx
  on public.suppression_list (email text_pattern_ops);
comment on index public.suppression_list_email_prefix_idx is
  'Prefix search of the suppression list (the console''s search by email).';
