--! Previous: sha1:5485c720f561cbbab8e6751d88262d6d931f8416
--! Hash: sha1:f3392c223f3217d35abf2c684f12d112873a05c8
--! Message: The console: users, sessions, actors, queue approvals

--! split: 1-current.sql
-- Enter migration here (rerun-safe: drop ... if exists, create or replace)

--! split: 5-console.sql
-- The browser console (issue 19): its users, their sessions, the second person's approval of a
-- queue, and who did each operator action. Rerun-safe: drop ... if exists first (reverse
-- dependency order), create or replace, add column if not exists.

drop function if exists public.approve_campaign_queue(uuid);
drop function if exists public.request_campaign_queue(uuid);
drop function if exists public.console_user_remove(text);
drop function if exists public.console_user_add(text, text, boolean, text);
drop table if exists public.campaign_queue_requests;
drop table if exists public.console_sessions;
drop table if exists public.console_users;

--------------------------------------------------------------------------------------------------
-- Who did it. The CLI and psql record their database login, as before; the console, which acts
-- for many people through one login, sets mailer.actor to 'console:<username>' in the
-- transaction of each action (set_config(..., true)), and every row written there carries it.
-- db_user still records the login that made the change.

alter table public.operator_actions add column if not exists actor text not null
  default coalesce(nullif(current_setting('mailer.actor', true), ''), session_user);
comment on column public.operator_actions.actor is
  'Who did it: ''console:<username>'' for a console user (the mailer.actor setting of the '
  'transaction), else the database login (session_user), as db_user.';
create index if not exists operator_actions_actor_idx
  on public.operator_actions (actor, action_id desc);
create index if not exists operator_actions_action_idx
  on public.operator_actions (action, action_id desc);

alter table public.operator_actions drop constraint if exists operator_actions_action_check;
alter table public.operator_actions add constraint operator_actions_action_check check (action in (
  'activate_template', 'add_template', 'deactivate_template', 'enqueue_generate_campaign',
  'pause_campaign', 'queue_campaign', 'resolve_in_doubt', 'resume_campaign', 'retry_failed',
  'retry_jobs', 'suppress', 'unsuppress', 'auto_resend',
  'schedule_campaign', 'unschedule_campaign', 'delete_campaign', 'test_send',
  'console_login', 'console_login_failed', 'console_logout', 'console_user_add',
  'console_user_remove', 'export_suppressions', 'queue_requested', 'queue_approved'));

-- The pause reason names the actor too: "paused by operator console:alice", not the console's
-- shared database login.
create or replace function public.set_campaign_status(p_campaign_id uuid, p_action text,
  p_from text[], p_to text) returns text
  language plpgsql volatile as $$
declare
  v_status text;
begin
  select status into v_status from public.campaigns where campaign_id = p_campaign_id for update;
  if not found then
    raise exception '%: no campaign %', p_action, p_campaign_id using errcode = 'no_data_found';
  end if;
  if v_status = p_to or (p_to = 'queued' and v_status = 'sending') then
    return v_status; -- already there: nothing to do, nothing to record
  end if;
  if not v_status = any(p_from) then
    raise exception '%: campaign % is %; % applies to a % campaign', p_action, p_campaign_id,
      v_status, p_action, array_to_string(p_from, ' or ')
      using errcode = 'check_violation',
            -- A hint of null is itself an error ("RAISE statement option cannot be null").
            hint = case v_status
                     when 'paused' then 'resume it with resume_campaign'
                     when 'draft' then 'queue it with queue_campaign'
                     when 'done' then 'a done campaign is finished; retry_failed_recipients '
                                      || 'queues its failed recipients again'
                     else format('a %s campaign can be paused with pause_campaign', v_status)
                   end;
  end if;
  update public.campaigns
     set status = p_to,
         pause_reason = case when p_to = 'paused' then format('paused by operator %s',
           coalesce(nullif(current_setting('mailer.actor', true), ''), session_user)) end
   where campaign_id = p_campaign_id;
  perform public.record_operator_action(p_action, null, p_campaign_id, null, null,
    jsonb_build_object('from', v_status, 'to', p_to));
  -- Entering queued with nothing to send ends the campaign at once (the enqueue trigger).
  select status into v_status from public.campaigns where campaign_id = p_campaign_id;
  return v_status;
end;
$$;
comment on function public.set_campaign_status(uuid, text, text[], text) is
  'Shared body of queue/pause/resume_campaign: moves a campaign from one of p_from to p_to and '
  'records it; a pause names the actor (mailer.actor, else the database login).';

--------------------------------------------------------------------------------------------------
-- Console users and sessions. Users are managed with `mailer console user add|remove|list`
-- (the functions below, for operators); the console reads them and keeps its sessions.

create table public.console_users (
  username text primary key,
  role text not null,
  can_queue boolean not null default false,
  password_hash text,
  created_at timestamptz not null default now(),
  disabled_at timestamptz,
  constraint console_users_username_format check (username ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
  constraint console_users_role_check check (role in ('viewer', 'operator')),
  constraint console_users_password_hash_format
    check (password_hash is null or password_hash ~ '^scrypt\$[0-9]+\$[0-9]+\$[0-9]+\$[^$]+\$[^$]+$')
);
comment on table public.console_users is
  'People who may use the browser console. Their actions are recorded in operator_actions as '
  'actor ''console:<username>''.';
comment on column public.console_users.username is
  'Login name: lowercase letters, digits and . _ @ -; also what a single-sign-on proxy sends.';
comment on column public.console_users.role is
  'viewer (support: reads everything) or operator (pause, resume, suppress, resolve, retry).';
comment on column public.console_users.can_queue is
  'The separate right to start a campaign (queue); with CONSOLE_QUEUE_APPROVAL a second person '
  'with this right approves.';
comment on column public.console_users.password_hash is
  'scrypt$N$r$p$salt$hash (base64url salt and hash; node''s scrypt); null: no password login '
  '(single sign-on only).';
comment on column public.console_users.created_at is 'When the user was added.';
comment on column public.console_users.disabled_at is
  'When set, the user may not log in and their sessions are refused.';

create table public.console_sessions (
  session_id text primary key,
  username text not null references public.console_users (username) on delete cascade,
  csrf_token text not null,
  created_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  expires_at timestamptz not null,
  constraint console_sessions_session_id_format check (session_id ~ '^[0-9a-f]{64}$'),
  constraint console_sessions_expires_after_creation check (expires_at > created_at)
);
comment on table public.console_sessions is
  'Console sessions. The cookie holds a random token; only its SHA-256 is stored, so a copy of '
  'this table logs nobody in. Logout deletes the row.';
comment on column public.console_sessions.session_id is 'SHA-256 (hex) of the cookie''s token.';
comment on column public.console_sessions.username is 'Whose session (removing the user ends it).';
comment on column public.console_sessions.csrf_token is
  'The token every POST of this session must carry (a hidden form field or a header).';
comment on column public.console_sessions.created_at is 'When the user logged in.';
comment on column public.console_sessions.last_seen_at is 'The session''s last request.';
comment on column public.console_sessions.expires_at is
  'After this the session is refused; each request moves it to 12 hours after itself (idle '
  'timeout).';
create index console_sessions_username_idx on public.console_sessions (username);
create index console_sessions_expires_at_idx on public.console_sessions (expires_at);

create table public.campaign_queue_requests (
  request_id bigint generated always as identity primary key,
  campaign_id uuid not null references public.campaigns (campaign_id) on delete cascade,
  requested_by text not null,
  requested_at timestamptz not null default now(),
  approved_by text,
  approved_at timestamptz,
  constraint campaign_queue_requests_second_person
    check (approved_by is null or approved_by <> requested_by),
  constraint campaign_queue_requests_approved_together
    check ((approved_by is null) = (approved_at is null))
);
comment on table public.campaign_queue_requests is
  'With CONSOLE_QUEUE_APPROVAL, queueing a campaign from the console is requested by one person '
  'and approved by another; approving queues it.';
comment on column public.campaign_queue_requests.request_id is 'Primary key.';
comment on column public.campaign_queue_requests.campaign_id is 'The draft to queue.';
comment on column public.campaign_queue_requests.requested_by is
  'Actor who asked (console:<username>).';
comment on column public.campaign_queue_requests.requested_at is 'When it was asked.';
comment on column public.campaign_queue_requests.approved_by is
  'Actor who approved it, never the one who asked; null while pending.';
comment on column public.campaign_queue_requests.approved_at is 'When it was approved.';
create unique index campaign_queue_requests_one_pending
  on public.campaign_queue_requests (campaign_id) where approved_by is null;

--------------------------------------------------------------------------------------------------
-- Operator functions (SECURITY DEFINER, for mailer_operator only, like the others).

create or replace function public.console_user_add(p_username text, p_role text,
  p_can_queue boolean, p_password_hash text) returns void
  language plpgsql volatile security definer set search_path = pg_catalog, public, pg_temp as $$
begin
  insert into public.console_users (username, role, can_queue, password_hash)
  values (p_username, p_role, coalesce(p_can_queue, false), p_password_hash);
  perform public.record_operator_action('console_user_add', null, null, null, null,
    jsonb_build_object('username', p_username, 'role', p_role,
                       'can_queue', coalesce(p_can_queue, false),
                       'password', p_password_hash is not null));
end;
$$;
comment on function public.console_user_add(text, text, boolean, text) is
  'Adds a console user (mailer console user add); a taken username is refused (unique_violation). '
  'Recorded in operator_actions (never the hash).';
revoke all on function public.console_user_add(text, text, boolean, text) from public;
grant all on function public.console_user_add(text, text, boolean, text) to mailer_operator;

create or replace function public.console_user_remove(p_username text) returns boolean
  language plpgsql volatile security definer set search_path = pg_catalog, public, pg_temp as $$
begin
  delete from public.console_users where username = p_username;
  if not found then
    return false;
  end if;
  perform public.record_operator_action('console_user_remove', null, null, null, null,
    jsonb_build_object('username', p_username));
  return true;
end;
$$;
comment on function public.console_user_remove(text) is
  'Removes a console user and ends their sessions; false when there was none. Recorded.';
revoke all on function public.console_user_remove(text) from public;
grant all on function public.console_user_remove(text) to mailer_operator;

create or replace function public.request_campaign_queue(p_campaign_id uuid) returns bigint
  language plpgsql volatile security definer set search_path = pg_catalog, public, pg_temp as $$
declare
  v_status text;
  v_request bigint;
  v_actor text := coalesce(nullif(current_setting('mailer.actor', true), ''), session_user);
begin
  select status into v_status from public.campaigns where campaign_id = p_campaign_id for update;
  if not found then
    raise exception 'request_campaign_queue: no campaign %', p_campaign_id
      using errcode = 'no_data_found';
  end if;
  if v_status <> 'draft' then
    raise exception 'request_campaign_queue: campaign % is %; only a draft is queued',
      p_campaign_id, v_status using errcode = 'check_violation';
  end if;
  select request_id into v_request from public.campaign_queue_requests
   where campaign_id = p_campaign_id and approved_by is null;
  if found then
    return v_request; -- already asked: one pending request per campaign
  end if;
  insert into public.campaign_queue_requests (campaign_id, requested_by)
  values (p_campaign_id, v_actor) returning request_id into v_request;
  perform public.record_operator_action('queue_requested', null, p_campaign_id, null, null,
    jsonb_build_object('request_id', v_request));
  return v_request;
end;
$$;
comment on function public.request_campaign_queue(uuid) is
  'Asks for a draft to be queued (CONSOLE_QUEUE_APPROVAL): a second person approves with '
  'approve_campaign_queue. Returns the pending request''s id. Recorded.';
revoke all on function public.request_campaign_queue(uuid) from public;
grant all on function public.request_campaign_queue(uuid) to mailer_operator;

create or replace function public.approve_campaign_queue(p_campaign_id uuid) returns text
  language plpgsql volatile security definer set search_path = pg_catalog, public, pg_temp as $$
declare
  v_request public.campaign_queue_requests;
  v_actor text := coalesce(nullif(current_setting('mailer.actor', true), ''), session_user);
begin
  select * into v_request from public.campaign_queue_requests
   where campaign_id = p_campaign_id and approved_by is null for update;
  if not found then
    raise exception 'approve_campaign_queue: nobody asked for campaign % to be queued',
      p_campaign_id using errcode = 'no_data_found';
  end if;
  if v_request.requested_by = v_actor then
    raise exception 'approve_campaign_queue: % asked for it; another person must approve', v_actor
      using errcode = 'insufficient_privilege';
  end if;
  update public.campaign_queue_requests set approved_by = v_actor, approved_at = now()
   where request_id = v_request.request_id;
  perform public.record_operator_action('queue_approved', null, p_campaign_id, null, null,
    jsonb_build_object('request_id', v_request.request_id,
                       'requested_by', v_request.requested_by));
  return public.queue_campaign(p_campaign_id);
end;
$$;
comment on function public.approve_campaign_queue(uuid) is
  'Approves the pending queue request of a campaign (by someone other than who asked) and '
  'queues it; returns its status. Recorded as queue_approved and queue_campaign.';
revoke all on function public.approve_campaign_queue(uuid) from public;
grant all on function public.approve_campaign_queue(uuid) to mailer_operator;

--------------------------------------------------------------------------------------------------
-- Privileges (section 13 of the baseline). The application (mailer_app: `serve`, `start`, which
-- host the console) reads users and keeps sessions; users are changed only through the
-- functions above; queue requests too.
revoke insert, update, delete on public.console_users, public.campaign_queue_requests
  from mailer_app;

--! split: 6-console-pages.sql
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
