--! Previous: sha1:a1247a813491da713778dda2a47eaa81d6011f4c
--! Hash: sha1:5a256751bbead62d4e70d820a280f2da5a4ca99e
--! Message: Unsubscribe finds its recipient by the primary key

--! split: 1-current.sql
-- An unsubscribe found the token's recipient by (campaign_id, email), which no index has: the
-- primary key's campaign prefix, a pass over every recipient of the campaign, twice per click
-- (1,000,000 recipients: a second or more each). The customer with the token's address names the
-- recipient through the primary key; only a customer whose address changed since the campaign
-- (or who is gone) still needs the pass.
create or replace function public.unsubscribe_by_token(p_token_id uuid, p_method text,
                                                       out outcome text, out email text)
  language plpgsql volatile as $$
#variable_conflict use_column
declare
  t public.unsubscribe_tokens;
  v_customer_id uuid;
begin
  if p_method is null or p_method not in ('one_click', 'form') then
    raise exception 'unsubscribe_by_token: unknown method %', p_method using errcode = 'invalid_parameter_value';
  end if;
  select * into t from public.unsubscribe_tokens where token_id = p_token_id for update;
  if not found then
    outcome := 'unknown';
    return;
  end if;
  email := t.email;
  if t.used_at is not null and exists (
    select 1 from public.suppression_list s
     where s.email = t.email and s.reason in ('unsubscribe', 'complaint')) then
    outcome := 'already';
    return;
  end if;

  -- The suppression trigger stops this address's pending recipients in every campaign;
  -- _150_keep_strongest turns a manual or bounce_hard entry into this unsubscribe.
  insert into public.suppression_list (email, reason, source)
  values (t.email, 'unsubscribe', 'user')
  on conflict (email) do nothing;
  update public.unsubscribe_tokens set used_at = coalesce(used_at, now()) where token_id = p_token_id;

  select r.customer_id into v_customer_id from public.campaign_recipients r
   where r.campaign_id = t.campaign_id and r.email = t.email
     and r.customer_id = (select c.customer_id from public.customers c where c.email = t.email);
  if not found then
    select r.customer_id into v_customer_id from public.campaign_recipients r
     where r.campaign_id = t.campaign_id and r.email = t.email;
  end if;
  -- 'sending' is left alone: the worker is between claim and outcome, and record_send_result only
  -- records an outcome for sending/in_doubt rows. The suppression already stops anything later.
  update public.campaign_recipients r
     set recipient_status = 'unsubscribed', last_error = null
   where r.campaign_id = t.campaign_id and r.customer_id = v_customer_id
     and r.recipient_status in ('pending', 'sent', 'in_doubt', 'failed', 'suppressed');
  insert into public.email_events_op (event_type, email, campaign_id, customer_id, payload)
  values ('unsubscribe', t.email, t.campaign_id, v_customer_id,
          jsonb_build_object('source', 'unsubscribe_link', 'method', p_method,
                             'token_expired', t.expires_at <= now()));
  outcome := 'unsubscribed';
end;
$$;
