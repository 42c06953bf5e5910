-- =====================================================================
-- fsync-contracts: the rules fs-sync-core (Rust) mirrors exactly — content
-- hash, path rules, file type inference. tests/sql/01-contracts.sql pins them.
-- All functions here are pure (IMMUTABLE) and need no privileges.
-- =====================================================================

-- ---------------------------------------------------------------------
-- Content hash: lowercase hex SHA-256 of the UTF-8 bytes (docs/contracts.md invariant 5).
-- ---------------------------------------------------------------------

create function fsync.content_hash(p_content text)
returns text
language plpgsql
immutable
strict
parallel safe
set search_path = ''
as $$
begin
  -- PL/pgSQL, not SQL: see fsync.setting in fsync-setup.
  return encode(sha256(convert_to(p_content, 'UTF8')), 'hex');
end
$$;
revoke all on function fsync.content_hash(text) from public;

-- ---------------------------------------------------------------------
-- Path rules. Checked in exactly this order; the first failing rule is reported:
--   empty, too_long, control_char, backslash, absolute, trailing_slash,
--   empty_segment, dot_segment, too_many_segments, segment_too_long, not_nfc,
--   reserved
-- Message: invalid path "<path>": <rule>: <explanation>
-- (control_char omits the path so no raw control character reaches a log or UI;
-- too_long shows only the first 64 characters; segment_too_long names the
-- segment by its first 32 characters).
-- Limits: the path 1024 bytes of UTF-8, 64 segments, each segment 255 bytes
-- (Linux's NAME_MAX: a container must be able to create every accepted path).
-- ---------------------------------------------------------------------

create function fsync.check_path(p_path text, out rule text, out message text)
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
  v_bytes integer;
  v_segments text[];
  v_bad text;
  v_long text;
begin
  if p_path is null or p_path = '' then
    rule := 'empty';
    message := 'invalid path "": empty: a file path must not be empty';
    return;
  end if;

  v_bytes := octet_length(p_path);
  if v_bytes > 1024 then
    rule := 'too_long';
    message := format('invalid path "%s…": too_long: the path is %s bytes of UTF-8; the limit is 1024',
                      left(p_path, 64), v_bytes);
    return;
  end if;

  v_bad := substring(p_path from '[\u0001-\u001f\u007f-\u009f]');
  if v_bad is not null then
    rule := 'control_char';
    message := format('invalid path: control_char: the path contains the control character U+%s',
                      upper(lpad(to_hex(ascii(v_bad)), 4, '0')));
    return;
  end if;

  if strpos(p_path, E'\\') > 0 then
    rule := 'backslash';
    message := format('invalid path "%s": backslash: separate folders with "/", not "\"', p_path);
    return;
  end if;

  if left(p_path, 1) = '/' then
    rule := 'absolute';
    message := format('invalid path "%s": absolute: the path must be relative (no leading "/")', p_path);
    return;
  end if;

  if right(p_path, 1) = '/' then
    rule := 'trailing_slash';
    message := format('invalid path "%s": trailing_slash: the path must name a file (no trailing "/")', p_path);
    return;
  end if;

  if strpos(p_path, '//') > 0 then
    rule := 'empty_segment';
    message := format('invalid path "%s": empty_segment: the path contains an empty segment ("//")', p_path);
    return;
  end if;

  v_segments := string_to_array(p_path, '/');
  if '.' = any (v_segments) or '..' = any (v_segments) then
    rule := 'dot_segment';
    message := format('invalid path "%s": dot_segment: "." and ".." segments are not allowed', p_path);
    return;
  end if;

  if cardinality(v_segments) > 64 then
    rule := 'too_many_segments';
    message := format('invalid path "%s": too_many_segments: the path has %s segments; the limit is 64',
                      p_path, cardinality(v_segments));
    return;
  end if;

  select s.seg into v_long
    from unnest(v_segments) with ordinality as s(seg, n)
   where octet_length(s.seg) > 255
   order by s.n
   limit 1;
  if v_long is not null then
    rule := 'segment_too_long';
    message := format('invalid path "%s": segment_too_long: the segment "%s…" is %s bytes of UTF-8; the limit is 255',
                      p_path, left(v_long, 32), octet_length(v_long));
    return;
  end if;

  if not (p_path is nfc normalized) then
    rule := 'not_nfc';
    message := format('invalid path "%s": not_nfc: the path must be Unicode NFC-normalized', p_path);
    return;
  end if;

  if p_path = '.fs-sync' or left(p_path, 9) = '.fs-sync/' then
    rule := 'reserved';
    message := format('invalid path "%s": reserved: the ".fs-sync" folder is reserved for fs-sync', p_path);
    return;
  end if;
end
$$;
revoke all on function fsync.check_path(text) from public;

-- NULL when p is a valid path, else the message naming the first failed rule.
create function fsync.path_error(p text)
returns text
language sql
immutable
parallel safe
set search_path = ''
as $$
  select (fsync.check_path(path_error.p)).message
$$;
revoke all on function fsync.path_error(text) from public;

-- Raises PT422 (HTTP 422) with DETAIL {"rule": …, "path": …} when p is invalid.
create function fsync.validate_path(p text)
returns void
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
  v_check record;
begin
  v_check := fsync.check_path(p);
  if v_check.rule is not null then
    perform fsync.raise_error('PT422', v_check.message,
      case when v_check.rule in ('too_long', 'control_char')
           then jsonb_build_object('rule', v_check.rule)
           else jsonb_build_object('rule', v_check.rule, 'path', p) end);
  end if;
end
$$;
revoke all on function fsync.validate_path(text) from public;

-- ---------------------------------------------------------------------
-- File type inference. Extension = text after the last '.' of the last segment,
-- lowercased; a segment that starts with '.' and has no other dot (".env") has
-- no extension. Unknown or missing extension: 'text'.
-- ---------------------------------------------------------------------

create function fsync.infer_file_type(p text)
returns text
language plpgsql
immutable
parallel safe
set search_path = ''
as $$
declare
  v_name text := coalesce(substring(p from '([^/]*)$'), '');
  v_ext text;
begin
  if strpos(v_name, '.') = 0 or (left(v_name, 1) = '.' and strpos(substr(v_name, 2), '.') = 0) then
    return 'text';
  end if;
  v_ext := lower(substring(v_name from '\.([^.]*)$'));
  return case
    when v_ext in ('ts', 'tsx', 'mts', 'cts') then 'typescript'
    when v_ext in ('js', 'jsx', 'mjs', 'cjs') then 'javascript'
    when v_ext in ('json', 'jsonc') then 'json'
    when v_ext in ('md', 'mdx', 'markdown') then 'markdown'
    when v_ext = 'sql' then 'sql'
    when v_ext in ('css', 'scss', 'sass', 'less') then 'css'
    when v_ext in ('html', 'htm') then 'html'
    when v_ext in ('yml', 'yaml') then 'yaml'
    when v_ext in ('xml', 'svg') then 'xml'
    when v_ext in ('png', 'jpg', 'jpeg', 'gif', 'webp', 'avif', 'ico', 'bmp', 'tif', 'tiff', 'heic', 'pdf',
                   'zip', 'gz', 'tgz', 'bz2', 'xz', '7z', 'rar', 'tar', 'woff', 'woff2', 'ttf', 'otf', 'eot',
                   'mp3', 'mp4', 'm4a', 'wav', 'ogg', 'webm', 'mov', 'avi', 'wasm', 'jar', 'so', 'dylib',
                   'dll', 'exe', 'bin', 'db', 'sqlite') then 'binary'
    else 'text'
  end;
end
$$;
revoke all on function fsync.infer_file_type(text) from public;
