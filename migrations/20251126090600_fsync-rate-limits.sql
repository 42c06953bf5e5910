-- =====================================================================
-- fsync-rate-limits: a token bucket per (user, project) charged by every write
-- RPC (one token per call; a bulk is one call). Settings in fsync.settings:
-- rate_limit.enabled, rate_limit.capacity, rate_limit.refill_per_second.
-- The service role and direct privileged connections are exempt.
-- When the bucket is empty the call fails with PT429 (HTTP 429) and DETAIL
-- {"retry_after_ms": n}. The error rolls back the bucket update too, so a
-- refused call consumes nothing.
-- =====================================================================

-- ---------------------------------------------------------------------
-- Tables
-- ---------------------------------------------------------------------

-- Unlogged: losing buckets in a crash only refills them.
create unlogged table fsync.rate_limit_buckets (
  subject text not null,
  project_id uuid not null,
  tokens double precision not null,
  refilled_at timestamptz not null,
  primary key (subject, project_id)
);

-- ---------------------------------------------------------------------
-- Helpers
-- ---------------------------------------------------------------------

create function fsync.consume_rate_limit(p_caller fsync.caller, p_project_id uuid)
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_capacity double precision;
  v_refill double precision;
  v_tokens double precision;
begin
  if p_caller.kind = 'service' then
    return;
  end if;
  if not coalesce((fsync.setting('rate_limit.enabled') #>> '{}')::boolean, true) then
    return;
  end if;
  v_capacity := coalesce((fsync.setting('rate_limit.capacity') #>> '{}')::double precision, 200);
  v_refill := greatest(coalesce((fsync.setting('rate_limit.refill_per_second') #>> '{}')::double precision, 50), 0);

  -- The clock is read in the DO UPDATE, which runs once the bucket's row lock is
  -- held: a time read before the lock can be older than the refilled_at a writer
  -- ahead in the queue stored, and storing it would refill that interval twice.
  -- greatest() keeps refilled_at from moving backwards if the clock does.
  insert into fsync.rate_limit_buckets as b (subject, project_id, tokens, refilled_at)
  values (coalesce(p_caller.user_id::text, p_caller.role), p_project_id, v_capacity - 1, clock_timestamp())
  on conflict (subject, project_id) do update
    set (tokens, refilled_at) = (
      select least(v_capacity, b.tokens + extract(epoch from (t.now - b.refilled_at)) * v_refill) - 1, t.now
        from (select greatest(clock_timestamp(), b.refilled_at) as now) t)
  returning b.tokens into v_tokens;

  if v_tokens < 0 then
    perform fsync.raise_error('PT429',
      'too many writes to this project: wait a moment and retry',
      jsonb_build_object('retry_after_ms',
        case when v_refill > 0 then ceil(-v_tokens / v_refill * 1000)::bigint else 60000 end));
  end if;
end
$$;
revoke all on function fsync.consume_rate_limit(fsync.caller, uuid) from public;
