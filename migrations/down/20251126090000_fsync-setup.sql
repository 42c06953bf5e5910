-- Reverses 20251126090000_fsync-setup.sql.
drop schema if exists fsync cascade;

-- Roles are cluster-wide: other databases of the cluster (test clones) may still
-- hold grants to fsync_container, in which case it stays (the up is idempotent).
do $$
begin
  if exists (select 1 from pg_catalog.pg_roles where rolname = 'fsync_container') then
    begin
      revoke fsync_container from authenticator;
      drop role fsync_container;
    exception when dependent_objects_still_exist then
      raise notice 'role fsync_container is still used by another database; kept';
    end;
  end if;
end
$$;
