-- Prepares a database that holds only the Koji schema (tests/fixtures/koji_schema.sql) for
-- the benchmark's bulk load. It records the sizes, creates the helper functions that the
-- other load files share, and drops every key, foreign key and index; finish.sql creates
-- them again after the load. Everything it adds lives in the schema bench_load, which finish.sql
-- drops. It takes the sizes from psql variables (bench/run.sh passes them per scale):
--
--   hosts tags packages builds listings tasks active span_days
\set ON_ERROR_STOP on
\o /dev/null

CREATE SCHEMA bench_load;

-- One row per size, so that the load files, which run in separate sessions, read the same
-- numbers.
CREATE TABLE bench_load.size (name text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO bench_load.size VALUES
    ('hosts', :hosts), ('tags', :tags), ('packages', :packages), ('builds', :builds),
    ('listings', :listings), ('tasks', :tasks), ('active', :active), ('span_days', :span_days);

DO $$
DECLARE
    entry record;
BEGIN
    FOR entry IN SELECT * FROM bench_load.size LOOP
        IF entry.value < 1 THEN
            RAISE EXCEPTION 'invalid size %=%: expected a positive number', entry.name, entry.value;
        END IF;
    END LOOP;
    IF (SELECT value FROM bench_load.size WHERE name = 'hosts') < 20 THEN
        RAISE EXCEPTION 'invalid size hosts: expected at least 20';
    END IF;
    IF (SELECT value FROM bench_load.size WHERE name = 'packages') < 100 THEN
        RAISE EXCEPTION 'invalid size packages: expected at least 100';
    END IF;
END
$$;

-- Returns a number in [0, 1) that depends only on (n, salt). The load uses it instead of
-- random(), so the same sizes always give the same rows, whatever the order of evaluation
-- and in every session.
CREATE FUNCTION bench_load.uniform(n bigint, salt integer) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT (hashint8(n * 1021 + salt)::float8 + 2147483648) / 4294967296 $$;

-- The releases. Fedora branches every 180 days; the newest is rawhide. The count grows
-- with the number of tags, from 3 to 25 Fedora releases, plus three EPEL releases. Each
-- release owns twelve tags with consecutive ids, so a release's tag ids are arithmetic.
CREATE TABLE bench_load.dist AS
WITH fedora AS (
    SELECT greatest(3, least(25, value / 100))::integer AS count
    FROM bench_load.size WHERE name = 'tags')
SELECT n AS idx, 'f' || (44 - fedora.count + n) AS name, 'fedora' AS family,
       'fc' || (44 - fedora.count + n) AS dist_tag,
       'x86_64 i686 aarch64 ppc64le s390x' AS arches, fedora.count - n AS age
FROM fedora, generate_series(1, fedora.count) AS n
UNION ALL
SELECT fedora.count + e.n, 'epel' || e.version, 'epel', 'el' || e.version,
       'x86_64 aarch64 ppc64le s390x', 0
FROM fedora, (VALUES (1, 8), (2, 9), (3, 10)) AS e (n, version);

CREATE TABLE bench_load.suffix (position integer PRIMARY KEY, suffix text NOT NULL);
INSERT INTO bench_load.suffix VALUES
    (0, ''), (1, '-build'), (2, '-override'), (3, '-updates'), (4, '-updates-candidate'),
    (5, '-updates-testing'), (6, '-updates-testing-pending'), (7, '-updates-pending'),
    (8, '-signing-pending'), (9, '-container-build'), (10, '-flatpak-build'), (11, '-infra');

-- Times: tags, builds and events spread over the history (the age of the oldest release),
-- tasks over the last span_days days, up to the time of loading.
CREATE TABLE bench_load.clock AS
SELECT now() AS loaded_at,
       now() - greatest(1095, (SELECT max(age) FROM bench_load.dist) * 180 + 30) * interval '1 day'
           AS history_start,
       (SELECT value FROM bench_load.size WHERE name = 'span_days') * interval '1 day' AS task_span,
       greatest(50000, 2 * (SELECT value FROM bench_load.size WHERE name = 'builds'))::integer
           AS events;

-- Returns the id of the event at time ts: events are spaced evenly over the history. The
-- constants are written into the body, so that PostgreSQL inlines the call.
SELECT format(
    'CREATE FUNCTION bench_load.event_at(ts timestamptz) RETURNS integer '
    'LANGUAGE sql IMMUTABLE PARALLEL SAFE AS %L',
    format('SELECT least(%s, greatest(1, 1 + floor(extract(epoch FROM ts - %L::timestamptz) / %s)))::integer',
           events, history_start,
           extract(epoch FROM loaded_at - history_start) / (events - 1)))
FROM bench_load.clock
\gexec

-- Package names: prefix, word and, past the first 1,200, a numbered variant. No word
-- contains a hyphen or starts with "lib", so every name is distinct.
CREATE FUNCTION bench_load.package_name(id bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT (ARRAY['', 'python-', 'perl-', 'rust-', 'golang-', 'nodejs-', 'ghc-', 'php-', 'R-',
                  'ocaml-', 'mingw-', 'lib'])[1 + (id - 1) % 12]
        || (ARRAY['acme', 'bison', 'cairo', 'dbus', 'expat', 'flex', 'gawk', 'gzip', 'hdf',
                  'icu', 'jq', 'krb', 'lua', 'mesa', 'nano', 'orc', 'pango', 'qemu', 'rsync',
                  'sed', 'tar', 'unzip', 'vala', 'wget', 'xz', 'yelp', 'zip', 'avahi', 'boost',
                  'curl', 'dnf', 'emacs', 'fuse', 'glib', 'httpd', 'ipset', 'json', 'kmod',
                  'lvm', 'mdadm', 'nss', 'opus', 'pcre', 'qt', 'rpm', 'sqlite', 'tcl', 'udisks',
                  'vim', 'wayland', 'xorg', 'yaml', 'zlib', 'alsa', 'bzip', 'cups', 'dhcp',
                  'ethtool', 'fontconfig', 'gtk', 'harfbuzz', 'iproute', 'jansson', 'krita',
                  'lzo', 'mutt', 'nginx', 'openssl', 'perl', 'quota', 'ruby', 'samba',
                  'texinfo', 'usbutils', 'valgrind', 'which', 'xfsprogs', 'yum', 'zsh',
                  'arrow', 'blas', 'clang', 'django', 'eigen', 'flask', 'gdal', 'hwloc',
                  'itk', 'jinja', 'kafka', 'lapack', 'numpy', 'pandas', 'requests', 'scipy',
                  'tokio', 'serde', 'urllib', 'wheel', 'zstd'])[1 + ((id - 1) / 12) % 100]
        || CASE WHEN id <= 1200 THEN '' ELSE '-' || ((id - 1) / 1200) END
$$;

-- Builders of XML-RPC values and calls, in the form task.request stores them.
CREATE FUNCTION bench_load.xml_string(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '<param><value><string>' || value || '</string></value></param>' $$;

CREATE FUNCTION bench_load.xml_int(value bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT '<param><value><int>' || value || '</int></value></param>' $$;

CREATE FUNCTION bench_load.xml_call(method text, params text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT '<?xml version=''1.0''?>' || chr(10) || '<methodCall>' || chr(10)
        || '<methodName>' || method || '</methodName>' || chr(10)
        || '<params>' || chr(10) || coalesce(params, '') || '</params>' || chr(10) || '</methodCall>'
$$;

-- Keys, unique constraints, foreign keys and indexes are dropped for the load and built
-- again in one pass each at the end, which is much faster than maintaining them row by row.
-- The saved definitions are the schema's own, names included.
CREATE TABLE bench_load.saved_constraint AS
SELECT conrelid::regclass::text AS table_name, conname AS name, contype AS kind,
       pg_get_constraintdef(oid) AS definition
FROM pg_constraint
WHERE connamespace = 'public'::regnamespace AND contype IN ('p', 'u', 'f');

CREATE TABLE bench_load.saved_index AS
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE c.relnamespace = 'public'::regnamespace
  AND NOT EXISTS (SELECT FROM pg_constraint AS k
                  WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'));

SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', table_name, name)
FROM bench_load.saved_constraint
ORDER BY kind = 'f' DESC
\gexec
SELECT format('DROP INDEX %s', name) FROM bench_load.saved_index
\gexec

\o
