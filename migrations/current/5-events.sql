-- /metrics counted the in-doubt recipients of every campaign ever sent on every scrape: a scan of
-- the whole campaign_recipients table (millions of rows after a year of weekly campaigns). In-doubt
-- recipients are few; a partial index makes the count, and in_doubt_recipients(), read only them.
create index if not exists campaign_recipients_in_doubt_idx
  on public.campaign_recipients (last_attempt_at)
  where recipient_status = 'in_doubt';
comment on index public.campaign_recipients_in_doubt_idx is
  'In-doubt recipients only (few): the /metrics count and the in-doubt listings read this.';
