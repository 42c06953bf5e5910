-- Reverses 20251126090800_fsync-feature-flags.sql.
--
-- velocity's Phase-0 flags (fsync.adopted) stay: the table with every row
-- (the flags fs-sync added too, as the operator left them, so that a later up
-- finds them as they were), its columns, policies and grants as recorded, and
-- its own is_feature_enabled(flag_key, user_id). On a fresh database the table
-- and the function are dropped.
drop function if exists public.get_enabled_features();
drop function if exists fsync.get_enabled_features();
do $$
declare
  v_function jsonb := (select a.state from fsync.adopted a
                        where a.kind = 'function' and a.name = 'public.is_feature_enabled(text,uuid)');
  v_table jsonb := (select a.state from fsync.adopted a where a.kind = 'relation' and a.name = 'public.feature_flags');
  v_grant jsonb;
begin
  drop function if exists public.is_feature_enabled(text, uuid);
  if v_function is not null then
    execute v_function ->> 'definition';
    revoke all on function public.is_feature_enabled(text, uuid) from public, anon, authenticated, service_role;
    for v_grant in select * from jsonb_array_elements(v_function -> 'acl') loop
      if v_grant ->> 'grantee' in ('PUBLIC', 'anon', 'authenticated', 'service_role') then
        execute format('grant execute on function public.is_feature_enabled(text, uuid) to %s',
                       case when v_grant ->> 'grantee' = 'PUBLIC' then 'public' else quote_ident(v_grant ->> 'grantee') end);
      end if;
    end loop;
  end if;

  if v_table is null then
    drop table if exists public.feature_flags;
  else
    if not exists (select 1 from jsonb_array_elements(v_table -> 'columns') c where c ->> 'name' = 'environments') then
      alter table public.feature_flags drop column if exists environments;
    end if;
    perform fsync.restore_grants('public.feature_flags', v_table);
  end if;
end
$$;
drop function if exists fsync.is_feature_enabled(text, uuid);
drop function if exists fsync.seed_feature_flags();
drop function if exists fsync.flag_enabled(text, uuid);
drop function if exists fsync.flag_bucket(text, uuid);
