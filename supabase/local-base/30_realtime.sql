-- =====================================================================
-- LOCAL STAND-IN ONLY. Never apply this file to a real Supabase project.
--
-- "Broadcast from Database" as supabase/realtime installs it in a tenant
-- database (lib/realtime/tenants/repo/migrations/*): realtime.messages,
-- realtime.topic(), realtime.send(), owned by supabase_realtime_admin
-- (20260707120000_restrict_realtime_schema), in a schema owned by
-- supabase_admin. realtime.messages is partitioned by day on inserted_at
-- (20241030150047_messages_partitioning); the Realtime server's janitor
-- creates the partitions from yesterday to three days ahead
-- (Realtime.Tenants.create_messages_partitions). Here
-- realtime.fsync_dev_create_partitions() does that: once below, and
-- periodically in fs-sync-dev. On a day without its partition every insert
-- fails, and realtime.send only warns (fsync.realtime_partition_status()
-- reports it).
-- =====================================================================

create schema if not exists realtime authorization supabase_admin;

create table if not exists realtime.messages (
  id uuid not null default gen_random_uuid(),
  topic text not null,
  extension text not null,
  payload jsonb,
  event text,
  private boolean default false,
  updated_at timestamp not null default now(),
  inserted_at timestamp not null default now(),
  binary_payload bytea,
  constraint messages_payload_exclusivity check (payload is null or binary_payload is null),
  primary key (id, inserted_at)
) partition by range (inserted_at);
create index if not exists messages_inserted_at_topic_index
  on realtime.messages (inserted_at desc, topic)
  where extension = 'broadcast' and private is true;

alter table realtime.messages enable row level security;

create or replace function realtime.topic()
returns text
language sql stable
as $$
  select nullif(current_setting('realtime.topic', true), '')::text;
$$;

-- Same signature and behaviour as upstream (20260605120000_rename_broadcast_send_warning):
-- not security definer; inserts as the calling role; any failure (including an RLS
-- violation) is swallowed and reported only as a WARNING.
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language plpgsql
as $$
declare
  generated_id uuid;
  final_payload jsonb;
begin
  begin
    generated_id := gen_random_uuid();

    if payload ? 'id' then
      final_payload := payload;
    else
      final_payload := jsonb_set(payload, '{id}', to_jsonb(generated_id));
    end if;

    execute format('SET LOCAL realtime.topic TO %L', topic);

    insert into realtime.messages (id, payload, event, topic, private, extension)
    values (generated_id, final_payload, event, topic, private, 'broadcast');
  exception
    when others then
      raise warning 'WarnSendingBroadcastMessage: %', sqlerrm;
  end;
end;
$$;

alter table realtime.messages owner to supabase_realtime_admin;
alter function realtime.topic() owner to supabase_realtime_admin;
alter function realtime.send(jsonb, text, text, boolean) owner to supabase_realtime_admin;

grant all on schema realtime to supabase_realtime_admin;
grant usage on schema realtime to anon, authenticated, service_role;
grant usage on schema realtime to postgres with grant option;
grant select, insert, update on realtime.messages to postgres, anon, authenticated, service_role;
grant execute on function realtime.topic(), realtime.send(jsonb, text, text, boolean)
  to postgres, anon, authenticated, service_role;
-- Tables supabase_admin creates there (the partitions) are granted to postgres
-- (20211130151719_update-realtime-permissions.sql).
alter default privileges for role supabase_admin in schema realtime grant all on tables to postgres;

-- The janitor's partitions: messages_YYYY_MM_DD for each UTC day from yesterday to three days
-- ahead, owned by supabase_realtime_admin. Local only; run as supabase_admin.
create or replace function realtime.fsync_dev_create_partitions()
returns void
language plpgsql
set search_path = ''
as $$
declare
  v_day date;
  v_name text;
begin
  for v_day in
    select (now() at time zone 'utc')::date + i from pg_catalog.generate_series(-1, 3) as i
  loop
    v_name := 'messages_' || pg_catalog.to_char(v_day, 'YYYY_MM_DD');
    if pg_catalog.to_regclass('realtime.' || v_name) is null then
      execute pg_catalog.format('create table realtime.%I partition of realtime.messages for values from (%L) to (%L)',
                                v_name, v_day::timestamp, (v_day + 1)::timestamp);
      execute pg_catalog.format('alter table realtime.%I owner to supabase_realtime_admin', v_name);
    end if;
  end loop;
end
$$;
revoke all on function realtime.fsync_dev_create_partitions() from public;

select realtime.fsync_dev_create_partitions();
