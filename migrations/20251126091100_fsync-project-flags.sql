-- =====================================================================
-- fsync-project-flags: evaluate a feature flag for a project's owner, for
-- server-side callers (the edge worker decides FSYNC_SNAPSHOT_HYDRATION per
-- project) without giving them a table read of public.projects.
-- =====================================================================

-- ---------------------------------------------------------------------
-- Public API
-- ---------------------------------------------------------------------

-- SECURITY DEFINER: reads public.projects, which the service role could read
-- anyway, but keeps the API an RPC (the edge speaks only /rest/v1/rpc). Only
-- the service role (and privileged connections) may call it; anyone else gets
-- 42501. A missing project is PT404.
create function fsync.is_feature_enabled_for_project(p_flag_key text, p_project_id uuid)
returns boolean
language plpgsql
stable
security definer
set search_path = ''
as $$
declare
  v_owner uuid;
begin
  if (fsync.current_caller()).kind <> 'service' then
    perform fsync.raise_error('42501', 'only the service role may evaluate flags for a project');
  end if;
  select p.owner_id into v_owner from public.projects p where p.id = p_project_id;
  if not found then
    perform fsync.raise_error('PT404', format('project %s not found', p_project_id),
                              jsonb_build_object('project_id', p_project_id));
  end if;
  return fsync.is_feature_enabled(p_flag_key, v_owner);
end
$$;
revoke all on function fsync.is_feature_enabled_for_project(text, uuid) from public;
grant execute on function fsync.is_feature_enabled_for_project(text, uuid) to service_role;

create function public.is_feature_enabled_for_project(flag_key text, project_uuid uuid)
returns boolean
language sql
stable
security invoker
set search_path = ''
as $$
  select fsync.is_feature_enabled_for_project(is_feature_enabled_for_project.flag_key,
                                              is_feature_enabled_for_project.project_uuid)
$$;
comment on function public.is_feature_enabled_for_project(text, uuid) is
  'Whether flag_key is on for the owner of project_uuid. Service role only.';
revoke all on function public.is_feature_enabled_for_project(text, uuid) from public, anon, authenticated;
grant execute on function public.is_feature_enabled_for_project(text, uuid) to service_role;
