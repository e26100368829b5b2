--! Previous: sha1:27e64e1b1e34d115c2cd6755a8d91c825743f0f9
--! Hash: sha1:446c7cfd21c2055eecf11413a721e4838105f15b
--! Message: In-doubt recipients can be marked failed

--! split: 1-current.sql
-- In-doubt recipients get a third decision: failed, for a message the operator knows SES did not
-- take (an outage's 5xx that the endpoint logged as refused). Until now the choices were sent,
-- which is false then, or resend, which sends it at once; a failed one is counted as failed and
-- can be sent later with retry_failed_recipients.

create or replace function public.resolve_in_doubt(p_campaign_id uuid, p_customer_id uuid,
                                                   p_decision text, p_note text default null)
  returns text
  language plpgsql volatile security definer
  set search_path = pg_catalog, public, pg_temp
  as $$
declare
  v_recipient public.campaign_recipients;
  v_campaign_status text;
  v_result text;
begin
  if p_decision is null or p_decision not in ('sent', 'resend', 'failed') then
    raise exception 'resolve_in_doubt: decision must be sent, resend or failed, got %', coalesce(p_decision, 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  select status into v_campaign_status from public.campaigns where campaign_id = p_campaign_id for update;
  select * into v_recipient from public.campaign_recipients
   where campaign_id = p_campaign_id and customer_id = p_customer_id for update;
  if v_recipient.campaign_id is null then
    raise exception 'resolve_in_doubt: no recipient (campaign %, customer %)', p_campaign_id, p_customer_id
      using errcode = 'no_data_found';
  end if;
  if v_recipient.recipient_status <> 'in_doubt' then
    raise exception 'resolve_in_doubt: recipient (campaign %, customer %) is %, not in_doubt; nothing changed',
      p_campaign_id, p_customer_id, v_recipient.recipient_status using errcode = 'check_violation';
  end if;

  if p_decision = 'sent' then
    update public.campaign_recipients
       set recipient_status = 'sent', last_error = 'in doubt; marked sent by an operator'
     where campaign_id = p_campaign_id and customer_id = p_customer_id;
    v_result := 'sent';
  elsif p_decision = 'failed' then
    -- SES did not take it (its console, or the error the endpoint logged): nothing is sent, and
    -- the report counts it as failed; retry_failed_recipients can send it later.
    update public.campaign_recipients
       set recipient_status = 'failed', last_error = 'in doubt; marked not sent (failed) by an operator'
     where campaign_id = p_campaign_id and customer_id = p_customer_id;
    v_result := 'failed';
  else
    update public.campaign_recipients
       set recipient_status = 'pending', last_error = 'in doubt; resend ordered by an operator'
     where campaign_id = p_campaign_id and customer_id = p_customer_id;
    if v_campaign_status = 'done' then
      -- A finished campaign sends again through the usual door: queued enqueues its pending
      -- recipient(s), and finishes once more when they are sent.
      update public.campaigns set status = 'queued' where campaign_id = p_campaign_id;
      v_result := 'pending; campaign queued again to send it';
    elsif v_campaign_status in ('queued', 'sending') then
      perform graphile_worker.add_job('send_recipient',
        json_build_object('campaign_id', p_campaign_id, 'customer_id', p_customer_id),
        job_key => format('send_recipient:%s:%s', p_campaign_id, p_customer_id));
      v_result := 'pending; send_recipient job added';
    else
      v_result := format('pending; campaign is %s: it is sent when the campaign is resumed', v_campaign_status);
    end if;
  end if;
  perform public.record_operator_action('resolve_in_doubt', v_recipient.email, p_campaign_id,
    p_customer_id, p_note,
    jsonb_build_object('decision', p_decision, 'attempt_count', v_recipient.attempt_count,
                       'last_attempt_at', v_recipient.last_attempt_at, 'last_error', v_recipient.last_error));
  return v_result;
end;
$$;

comment on function public.resolve_in_doubt(uuid, uuid, text, text) is
  'The operator''s decision on an in_doubt recipient: ''sent'' (SES did take it) marks it sent; '
  '''resend'' sets it pending and enqueues one send_recipient job (the recipient may get it '
  'twice); ''failed'' (SES did not take it) marks it failed, sending nothing. Recorded in '
  'operator_actions. Refuses a recipient that is not in_doubt.';
