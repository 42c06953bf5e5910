-- Contracts shared with fs-sync-core (Rust): content hash, path rules (rule
-- names, order, messages), file type inference. A change here must be made in
-- crates/core too.
begin;
create extension if not exists pgtap;
select plan(33);

-- Content hash ------------------------------------------------------------
select is(fsync.content_hash(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'hash of empty content');
select is(fsync.content_hash('hello'), '2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824', 'hash of ASCII');
select is(fsync.content_hash('héllo wörld 🚀 日本語'), 'e7b420081f10fbb4d9434aa221a338cf6a65f4ab8dde85e3a210ea7048761e26',
          'hash of multi-byte UTF-8 (2-, 3- and 4-byte characters)');
select is(fsync.content_hash(repeat('a', 5242880)), 'a29968fad2e782aa9f2040a35f05adb97ed8979eb1f572c8c8ea78637e275f3c',
          'hash of 5 MiB content');
select is(fsync.content_hash('hello'), encode(sha256(convert_to('hello', 'UTF8')), 'hex'),
          'content_hash is encode(sha256(convert_to(content, ''UTF8'')), ''hex'')');
select isnt(fsync.content_hash(U&'e\0301'), fsync.content_hash(U&'\00e9'),
            'content is hashed as given, never normalised');

-- Path rules: valid paths -------------------------------------------------
select is_empty($$
  select p, fsync.path_error(p) from (values
    ('src/App.tsx'), ('a'), ('.env'), ('dir/.gitignore'), ('ünïcode/日本.ts'), ('...'), ('a/.../b'),
    ('.fs-syncx/a'), ('a/.fs-sync/b'), ('.fs-sync-cache'), ('with space/and "quotes".txt'),
    (array_to_string(array_fill(repeat('x', 204), array[5]), '/')),
    (array_to_string(array_fill(repeat('é', 127), array[4]) || repeat('é', 2), '/')), (repeat('a/', 63) || 'a'),
    (repeat('a', 255)), ('src/' || repeat('é', 127) || 'a'), (repeat('日', 85) || '/x'), (repeat('🚀', 63) || 'abc')
  ) as v(p)
  where fsync.path_error(p) is not null
$$, 'valid paths (incl. exactly 1024 bytes, exactly 64 segments, segments of exactly 255 bytes) have no error');

-- Path rules: each rule, and the order they are checked in ----------------
select results_eq($$
  select (fsync.check_path(p)).rule from (values
    (1, null), (2, ''), (3, repeat('x', 1025)), (4, repeat('é', 513)), (5, repeat('/', 2000)),
    (6, E'a\tb'), (7, E'a\u0001b'), (8, E'a\u001fb'), (9, E'a\u007fb'), (10, E'a\u0080b'), (11, E'a\u009fb'),
    (12, E'/a\\b'), (13, E'a\\b'), (14, '/a'), (15, '/'), (16, '/a/'), (17, 'a/'), (18, 'a//'),
    (19, 'a//b'), (20, '.'), (21, '..'), (22, './a'), (23, 'a/../b'), (24, 'a/.'),
    (25, repeat('a/', 64) || 'a'), (26, repeat('./', 64) || 'a'),
    (27, U&'e\0301.txt'), (28, U&'.fs-sync/\0065\0301'), (29, '.fs-sync'), (30, '.fs-sync/manifest.json'),
    (31, E'/\t')
  ) as v(n, p) order by n
$$, $$values ('empty'), ('empty'), ('too_long'), ('too_long'), ('too_long'),
             ('control_char'), ('control_char'), ('control_char'), ('control_char'), ('control_char'), ('control_char'),
             ('backslash'), ('backslash'), ('absolute'), ('absolute'), ('absolute'), ('trailing_slash'), ('trailing_slash'),
             ('empty_segment'), ('dot_segment'), ('dot_segment'), ('dot_segment'), ('dot_segment'), ('dot_segment'),
             ('too_many_segments'), ('dot_segment'),
             ('not_nfc'), ('not_nfc'), ('reserved'), ('reserved'),
             ('control_char')$$,
  'each rule is reported, first failing rule in the fixed order wins');

-- Path rules: segments are limited to 255 bytes of UTF-8 (NAME_MAX), also when the
-- limit falls inside a multi-byte character.
select results_eq($$
  select octet_length(s), (fsync.check_path(p)).rule from (values
    (1, repeat('a', 256)), (2, repeat('é', 127) || 'aa'), (3, repeat('é', 128)), (4, repeat('日', 85) || 'a'),
    (5, repeat('日', 86)), (6, repeat('🚀', 63) || 'abcd'), (7, repeat('🚀', 64)),
    (8, repeat('a', 255)), (9, repeat('🚀', 63) || 'abc')
  ) as v(n, s), lateral (values ('src/' || s || '/x.ts')) as q(p) order by n
$$, $$values (256, 'segment_too_long'), (256, 'segment_too_long'), (256, 'segment_too_long'), (256, 'segment_too_long'),
             (258, 'segment_too_long'), (256, 'segment_too_long'), (256, 'segment_too_long'),
             (255, null::text), (255, null)$$,
  'a segment of 256 bytes or more is refused, one of 255 accepted, counted in bytes');
select results_eq($$
  select (fsync.check_path(p)).rule from (values
    (1, repeat('a/', 64) || repeat('b', 256)), (2, '../' || repeat('b', 256)), (3, repeat(U&'e\0301', 86)),
    (4, '.fs-sync/' || repeat('b', 256))
  ) as v(n, p) order by n
$$, $$values ('too_many_segments'), ('dot_segment'), ('segment_too_long'), ('segment_too_long')$$,
  'segment_too_long comes after too_many_segments and before not_nfc and reserved');

-- Path rules: messages ------------------------------------------------------
select is(fsync.path_error(''), 'invalid path "": empty: a file path must not be empty', 'empty message');
select is(fsync.path_error('/a'), 'invalid path "/a": absolute: the path must be relative (no leading "/")', 'absolute message');
select is(fsync.path_error(E'a\\b'), E'invalid path "a\\b": backslash: separate folders with "/", not "\\"', 'backslash message');
select is(fsync.path_error('a/'), 'invalid path "a/": trailing_slash: the path must name a file (no trailing "/")', 'trailing_slash message');
select is(fsync.path_error('a//b'), 'invalid path "a//b": empty_segment: the path contains an empty segment ("//")', 'empty_segment message');
select is(fsync.path_error('a/../b'), 'invalid path "a/../b": dot_segment: "." and ".." segments are not allowed', 'dot_segment message');
select is(fsync.path_error(repeat('a/', 64) || 'a'),
          'invalid path "' || repeat('a/', 64) || 'a": too_many_segments: the path has 65 segments; the limit is 64',
          'too_many_segments message');
select is(fsync.path_error(U&'e\0301.txt'), U&'invalid path "e\0301.txt": not_nfc: the path must be Unicode NFC-normalized', 'not_nfc message');
select is(fsync.path_error('.fs-sync/manifest.json'),
          'invalid path ".fs-sync/manifest.json": reserved: the ".fs-sync" folder is reserved for fs-sync', 'reserved message');
select is(fsync.path_error('src/' || repeat('x', 300) || '/a.ts'),
          'invalid path "src/' || repeat('x', 300) || '/a.ts": segment_too_long: the segment "' || repeat('x', 32)
          || '…" is 300 bytes of UTF-8; the limit is 255',
          'segment_too_long message names the segment by its start, its size and the limit');
select is(fsync.path_error(repeat('x', 1030)),
          'invalid path "' || repeat('x', 64) || '…": too_long: the path is 1030 bytes of UTF-8; the limit is 1024',
          'too_long message shows only the start of the path');
select is(fsync.path_error(E'src/a\tb.ts'), 'invalid path: control_char: the path contains the control character U+0009',
          'control_char message names the code point and omits the path');
select is(fsync.path_error(E'a\u0085'), 'invalid path: control_char: the path contains the control character U+0085',
          'C1 control characters are refused');
select ok(fsync.path_error(E'src/a\tb.ts') !~ '[\u0001-\u001f\u007f-\u009f]', 'no raw control character in any message');

-- validate_path raises PT422 with DETAIL {"rule", "path"} -------------------
select throws_ok($$select fsync.validate_path('/etc/passwd')$$, 'PT422',
  'invalid path "/etc/passwd": absolute: the path must be relative (no leading "/")', 'validate_path raises PT422');
select is(tests.error_of($$select fsync.validate_path('/etc/passwd')$$) ->> 'detail',
          '{"path": "/etc/passwd", "rule": "absolute"}', 'PT422 DETAIL names the rule and the path');
select is(tests.error_of($$select fsync.validate_path(E'a\u0001')$$) ->> 'detail', '{"rule": "control_char"}',
          'control_char DETAIL omits the path');
select lives_ok($$select fsync.validate_path('src/ok.ts')$$, 'validate_path accepts a valid path');

-- File type inference -------------------------------------------------------
select results_eq($$
  select fsync.infer_file_type(p) from (values
    (1, 'a.ts'), (2, 'a.tsx'), (3, 'a.mts'), (4, 'a.cts'), (5, 'a.js'), (6, 'a.jsx'), (7, 'a.mjs'), (8, 'a.cjs'),
    (9, 'a.json'), (10, 'a.jsonc'), (11, 'a.md'), (12, 'a.mdx'), (13, 'a.markdown'), (14, 'a.sql'),
    (15, 'a.css'), (16, 'a.scss'), (17, 'a.sass'), (18, 'a.less'), (19, 'a.html'), (20, 'a.htm'),
    (21, 'a.yml'), (22, 'a.yaml'), (23, 'a.xml'), (24, 'a.svg')
  ) as v(n, p) order by n
$$, $$values ('typescript'), ('typescript'), ('typescript'), ('typescript'), ('javascript'), ('javascript'),
             ('javascript'), ('javascript'), ('json'), ('json'), ('markdown'), ('markdown'), ('markdown'), ('sql'),
             ('css'), ('css'), ('css'), ('css'), ('html'), ('html'), ('yaml'), ('yaml'), ('xml'), ('xml')$$,
  'text types by extension');
select is_empty($$
  select e, fsync.infer_file_type('assets/file.' || e) from unnest(array[
    'png', 'jpg', 'jpeg', 'gif', 'webp', 'avif', 'ico', 'bmp', 'tif', 'tiff', 'heic', 'pdf', 'zip', 'gz', 'tgz',
    'bz2', 'xz', '7z', 'rar', 'tar', 'woff', 'woff2', 'ttf', 'otf', 'eot', 'mp3', 'mp4', 'm4a', 'wav', 'ogg',
    'webm', 'mov', 'avi', 'wasm', 'jar', 'so', 'dylib', 'dll', 'exe', 'bin', 'db', 'sqlite']) as e
  where fsync.infer_file_type('assets/file.' || e) <> 'binary'
$$, 'binary types by extension');
select results_eq($$
  select fsync.infer_file_type(p) from (values
    (1, 'Makefile'), (2, '.env'), (3, 'dir/.gitignore'), (4, '.eslintrc.json'), (5, 'A.TSX'), (6, 'Photo.JPG'),
    (7, 'archive.tar.gz'), (8, 'notes.txt'), (9, 'a.'), (10, 'dir.ts/readme'), (11, 'x.d.ts'), (12, '...'),
    (13, 'a.unknownext')
  ) as v(n, p) order by n
$$, $$values ('text'), ('text'), ('text'), ('json'), ('typescript'), ('binary'), ('binary'), ('text'), ('text'),
             ('text'), ('typescript'), ('text'), ('text')$$,
  'no extension, dotfiles, case, multiple dots, and unknown extensions');
select is(fsync.infer_file_type('.env.local'), 'text', '".env.local" has extension "local" → text');
select is(fsync.infer_file_type('.babelrc.js'), 'javascript', 'a dotfile with another dot has an extension');

select * from finish();
rollback;
