--! Previous: sha1:b05198fdb1adc033262d4baaabdec117ae510a28
--! Hash: sha1:3a2920f322466ca5b55322ec58f8b6f4f55ad3ce
--! Message: drop record_sns_notification, the single-message form the webhook no longer calls

--! split: 1-current.sql
-- The webhook stores notifications with record_sns_notifications (migration 000006); the
-- single-message form has had no caller since.
drop function if exists public.record_sns_notification(text, text, json);

comment on function public.record_sns_notifications(text[], text[], json[]) is
  'Remembers each verified SNS Notification and enqueues one process_ses_event per new '
  'MessageId, in one statement for all the notifications that arrived together. Returns '
  '(ord, fresh) per input, ord 1-based; fresh is false for a MessageId seen before (or earlier '
  'in the same batch).';
