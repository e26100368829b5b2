--! Previous: sha1:c234effc7a9af7d04a35d7d267187de8b6436f2a
--! Hash: sha1:59229affd6b3bae612f9876accd2cf816688a1db
--! Message: The batched send calls run on generic plans

--! split: 1-current.sql
-- The batched send calls run their statements on generic plans. Their statements are key
-- lookups whose plan does not depend on the keys, but PL/pgSQL kept planning them again on every
-- call: the plan cache compares the generic plan's estimate (unnest of an array parameter: 10
-- rows) with the custom plans' (the real few rows), finds it costlier and never switches. Planned
-- for every call, record_send_outcomes took 0.74-0.77 ms for 7 recipients against 0.53-0.56 ms
-- on a generic plan, claim_recipients 0.78-0.84 ms against 0.70-0.75 ms (one connection, 572
-- calls each, 2026-12-07): planning was a quarter of the outcome's server time. The generic
-- plans are the custom plans' shapes (auto_explain): nested loops over the keys, index lookups.
-- A function's SET clause holds for all that runs inside it; these fire only the timestamps
-- triggers, which run no queries.
alter function public.claim_recipients(uuid[], uuid[], interval)
  set plan_cache_mode = force_generic_plan;
alter function public.record_send_outcomes(uuid[], uuid[], integer[], text[], text[], text[],
                                           timestamptz[])
  set plan_cache_mode = force_generic_plan;
alter function public.reserve_send_slots_for(double precision, uuid[], uuid[])
  set plan_cache_mode = force_generic_plan;
