-- Fills a database that contains only the Koji schema (tests/fixtures/koji_schema.sql) with a
-- generated data set of realistic size, for the koji_exporter demo. It writes the schema's
-- tables and its own temporary tables, nothing else, and takes its sizes from psql variables:
--
--   psql -v ON_ERROR_STOP=1 -v tasks=20000 -f scripts/demo_data.sql
--
--   variable  default  meaning
--   hosts         300  build hosts, at least 20
--   tags         2700  tags: 108 release tags are always made, the rest are side tags
--   packages     8000  packages, at least 100
--   builds      60000  builds
--   tasks      300000  tasks, at least 1000
--
-- Statements are set-based (generate_series), with no per-row loops. The same sizes give
-- the same rows, because random() is seeded with setseed and is only called where the row
-- order is fixed. Every time is relative to the time of loading: tasks cover the last 90
-- days, tags and builds the last three years.
\set ON_ERROR_STOP on
\if :{?hosts}
\else
\set hosts 300
\endif
\if :{?tags}
\else
\set tags 2700
\endif
\if :{?packages}
\else
\set packages 8000
\endif
\if :{?builds}
\else
\set builds 60000
\endif
\if :{?tasks}
\else
\set tasks 300000
\endif
-- Query results (setval, set_config) would only clutter the caller's output.
\o /dev/null

SELECT set_config('koji_demo.hosts', :'hosts', false),
       set_config('koji_demo.tags', :'tags', false),
       set_config('koji_demo.packages', :'packages', false),
       set_config('koji_demo.builds', :'builds', false),
       set_config('koji_demo.tasks', :'tasks', false);

DO $$
DECLARE
    variable text;
    minimum integer;
    value text;
BEGIN
    FOR variable, minimum IN
        VALUES ('hosts', 20), ('tags', 0), ('packages', 100), ('builds', 0), ('tasks', 1000)
    LOOP
        value := current_setting('koji_demo.' || variable);
        IF value !~ '^[0-9]{1,9}$' OR value::integer < minimum THEN
            RAISE EXCEPTION 'invalid psql variable %=%: expected a whole number of at least %',
                variable, value, minimum;
        END IF;
    END LOOP;
END
$$;

SELECT setseed(0.1971);

-- One reference time for every statement. Events are spread evenly over the three years,
-- so the event of any moment is a computation, not a lookup. A task family (a top-level
-- task and its subtasks) has about 2.84 tasks on average, and families are spaced so that
-- the kept tasks reach back about 90 days. A mass rebuild started two hours ago adds about
-- one build family per 1500 tasks and keeps a few hundred tasks waiting or running.
SELECT now() AS demo_now,
       now() - interval '1095 days' AS demo_history_start,
       now() - interval '90 days' AS demo_task_start,
       greatest(20000, :builds * 5) AS demo_events,
       1095 * 86400.0 / (greatest(20000, :builds * 5) - 1) AS demo_event_seconds,
       90 * 86400.0 * 2.84 / :tasks AS demo_family_seconds,
       ceil(:tasks / 2.84 * 1.15)::integer AS demo_regular_families,
       greatest(1, round(:tasks / 1500.0))::integer AS demo_burst_families,
       600 AS demo_packagers
\gset

-- Returns the id of the first event at or after ts (the newest event for later times), or
-- NULL for NULL. It is not STRICT, because that would keep the planner from inlining it.
SELECT format(
    'CREATE FUNCTION pg_temp.event_at(ts timestamptz) RETURNS integer LANGUAGE sql STABLE AS %L',
    format('SELECT CASE WHEN ts IS NOT NULL THEN least(%s, greatest(1, 1 + ceil(extract(epoch FROM ts - %L::timestamptz) / %s)))::integer END',
           :demo_events, :'demo_history_start', :demo_event_seconds))
\gexec

-- Returns the Fedora release that was rawhide at ts (back = 0) or the one `back` releases
-- before it. Fedora f39 branched when the history starts, and one more every 180 days.
SELECT format(
    'CREATE FUNCTION pg_temp.fedora_at(ts timestamptz, back integer) RETURNS text LANGUAGE sql STABLE AS %L',
    format('SELECT ''f'' || (39 + greatest(0, least(5, floor(extract(epoch FROM ts - %L::timestamptz) / (180 * 86400)))::integer - back))',
           :'demo_history_start'))
\gexec

-- Returns the element of the 1-based array a that a uniform number r in [0, 1) selects.
CREATE FUNCTION pg_temp.pick(a anyarray, r float8) RETURNS anyelement
LANGUAGE sql IMMUTABLE
AS $$ SELECT a[1 + floor(r * cardinality(a))::integer] $$;

-- Builders of XML-RPC parameters and calls, in the form task.request stores them.
CREATE FUNCTION pg_temp.xml_string(value text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT '<param><value><string>' || value || '</string></value></param>' $$;

CREATE FUNCTION pg_temp.xml_int(value bigint) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$ SELECT '<param><value><int>' || value || '</int></value></param>' $$;

CREATE FUNCTION pg_temp.xml_call(method text, params text) RETURNS text
LANGUAGE sql IMMUTABLE
AS $$
    SELECT '<?xml version=''1.0''?><methodCall><methodName>' || method
        || '</methodName><params>' || coalesce(params, '') || '</params></methodCall>'
$$;

-- Foreign keys and plain indexes are dropped for the bulk load and created again at the
-- end, as pg_restore does, because one pass per key or index is faster than one lookup or
-- insertion per row. The saved definitions are the schema's own, names included. Primary
-- keys and UNIQUE constraints stay, so duplicates still fail at once.
CREATE TEMP TABLE demo_foreign_key AS
SELECT conrelid::regclass::text AS table_name, conname AS name, pg_get_constraintdef(oid) AS definition
FROM pg_constraint
WHERE contype = 'f' AND connamespace = 'public'::regnamespace;

CREATE TEMP TABLE demo_index AS
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS definition
FROM pg_index AS i
JOIN pg_class AS c ON c.oid = i.indexrelid
WHERE c.relnamespace = 'public'::regnamespace
  AND NOT EXISTS (SELECT FROM pg_constraint AS k
                  WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x'));

SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', table_name, name) FROM demo_foreign_key
\gexec
SELECT format('DROP INDEX %s', name) FROM demo_index
\gexec

-- Events -------------------------------------------------------------------------------

INSERT INTO events (id, time)
SELECT i, :'demo_history_start'::timestamptz + (i - 1) * :demo_event_seconds * interval '1 second'
FROM generate_series(1, :demo_events) AS i;

-- Users --------------------------------------------------------------------------------
-- 1 to 4 are service accounts, 5 to 604 packagers (every 47th blocked), then one user
-- per host (usertype 1), as Koji creates for each host.

INSERT INTO users (id, name, status, usertype) VALUES
    (1, 'kojiadmin', 0, 0),
    (2, 'kojira', 0, 0),
    (3, 'bodhi', 0, 0),
    (4, 'releng', 0, 0);

INSERT INTO users (id, name, status, usertype)
SELECT 5 + i,
       chr(97 + i % 26) || (ARRAY[
           'smith', 'garcia', 'novak', 'kowalski', 'rossi', 'tanaka', 'kim', 'singh',
           'patel', 'nguyen', 'silva', 'santos', 'ivanov', 'dubois', 'jensen', 'larsen',
           'fischer', 'weber', 'bianchi', 'moreau', 'kumar', 'chen', 'wang', 'zhang',
           'sato', 'suzuki', 'lopez', 'martin', 'bernard', 'horvat', 'nagy', 'popescu',
           'kovacs', 'meyer', 'schmidt', 'jones', 'brown', 'taylor', 'wilson', 'evans',
           'walker', 'wright', 'hughes', 'murphy', 'kelly', 'byrne', 'dvorak', 'svoboda',
           'berg', 'lindqvist'])[1 + i / 26 % 50],
       CASE WHEN i % 47 = 46 THEN 1 ELSE 0 END,
       0
FROM generate_series(0, :demo_packagers - 1) AS i;

-- Channels -----------------------------------------------------------------------------
-- The schema creates Koji's eight default channels; two more are added. appliance is
-- disabled, and vm keeps no hosts.

INSERT INTO channels (name) VALUES ('compose'), ('container')
ON CONFLICT (name) DO NOTHING;

UPDATE channels
SET description = d.description
FROM (VALUES
    ('default', 'Package builds and general tasks'),
    ('createrepo', 'Repository generation'),
    ('maven', 'Maven builds'),
    ('livecd', 'Live CD images'),
    ('appliance', 'Appliance images'),
    ('vm', 'Builds in Windows virtual machines'),
    ('image', 'Cloud and disk images'),
    ('livemedia', 'Live media images'),
    ('compose', 'Runroot tasks of release composes'),
    ('container', 'Container image builds')) AS d (name, description)
WHERE channels.name = d.name;

UPDATE channels
SET enabled = FALSE, comment = 'Appliance images are no longer built.'
WHERE name = 'appliance';

-- Hosts --------------------------------------------------------------------------------
-- Host kinds come in fixed shares, so that every kind exists from 20 hosts on: half x86_64
-- virtual machines, a quarter aarch64, then ppc64le, s390x and x86_64 hardware hosts.

CREATE TEMP TABLE demo_host AS
SELECT placed.*,
       row_number() OVER (PARTITION BY kind ORDER BY id) AS kind_number,
       count(*) OVER (PARTITION BY kind) AS kind_count,
       random() AS r_capacity,
       random() AS r_enabled,
       random() AS r_live,
       random() AS r_age,
       random() AS r_created,
       random() AS r_history,
       random() AS r_ready,
       random() AS r_comment
FROM (
    SELECT h AS id,
           CASE
               WHEN (h - 0.5) / :hosts < 0.50 THEN 'x86'
               WHEN (h - 0.5) / :hosts < 0.75 THEN 'a64'
               WHEN (h - 0.5) / :hosts < 0.84 THEN 'ppc'
               WHEN (h - 0.5) / :hosts < 0.92 THEN 's390x'
               ELSE 'hw'
           END AS kind
    FROM generate_series(1, :hosts) AS h
    ORDER BY h) AS placed
ORDER BY id;

-- Host state. "live" hosts run kojid and updated within the last 25 s. A few enabled hosts
-- are stale because kojid died 2 hours to 2 days ago, and half of them still show ready,
-- as after a crash. Almost half of the disabled hosts are switched off. The two newest
-- x86_64 hosts were added but never started (update_time NULL). "usable" hosts may take
-- tasks: they are enabled, live, and not one of the hosts with id % 37 = 5. Those stand for
-- builders whose kojid reports not ready for a reason the database cannot show (low disk
-- space, high load average), and scripts/demo_activity.sql applies the same rule.
CREATE TEMP TABLE demo_host_state AS
SELECT h.*,
       format('%s-%s.iad2.example.org',
              CASE kind
                  WHEN 'x86' THEN 'buildvm-x86'
                  WHEN 'a64' THEN 'buildvm-a64'
                  WHEN 'ppc' THEN 'buildvm-ppc64le'
                  WHEN 's390x' THEN 'buildvm-s390x'
                  ELSE 'buildhw-x86'
              END,
              lpad(kind_number::text, 3, '0')) AS name,
       CASE kind
           WHEN 'a64' THEN 'aarch64'
           WHEN 'ppc' THEN 'ppc64le'
           WHEN 's390x' THEN 's390x'
           ELSE 'x86_64 i686'
       END AS arches,
       pg_temp.pick(CASE kind
                        WHEN 'x86' THEN ARRAY[4, 8, 8, 10, 12]
                        WHEN 'a64' THEN ARRAY[4, 6, 8, 8]
                        WHEN 'ppc' THEN ARRAY[4, 6, 8]
                        WHEN 's390x' THEN ARRAY[2, 3, 4, 4]
                        ELSE ARRAY[12, 16, 16]
                    END, r_capacity)::float8 AS capacity,
       kind = 'x86' AND kind_number > kind_count - 2 AS never_started,
       CASE kind WHEN 'hw' THEN 25 ELSE 10 END AS maxjobs
FROM demo_host AS h;

ALTER TABLE demo_host_state
    ADD COLUMN enabled boolean,
    ADD COLUMN live boolean,
    ADD COLUMN usable boolean,
    ADD COLUMN update_time timestamptz,
    ADD COLUMN stale_ready boolean,
    ADD COLUMN created_at timestamptz,
    ADD COLUMN changed_at timestamptz,
    ADD COLUMN user_id integer;

UPDATE demo_host_state
SET enabled = never_started OR r_enabled >= 0.07,
    user_id = 4 + :demo_packagers + id;

UPDATE demo_host_state
SET live = NOT never_started
        AND CASE WHEN enabled THEN r_live >= 0.025 ELSE r_live >= 0.45 END;

UPDATE demo_host_state
SET usable = enabled AND live AND id % 37 <> 5,
    stale_ready = enabled AND NOT live AND NOT never_started AND r_ready < 0.5,
    update_time = CASE
        WHEN never_started THEN NULL
        WHEN live THEN :'demo_now'::timestamptz - r_age * interval '25 seconds'
        WHEN enabled THEN :'demo_now'::timestamptz - interval '2 hours' - r_age * interval '2 days'
        ELSE :'demo_now'::timestamptz - interval '2 hours' - r_age * interval '20 days'
    END,
    created_at = CASE
        WHEN never_started THEN :'demo_now'::timestamptz - interval '1 hour' - r_created * interval '23 hours'
        ELSE :'demo_history_start'::timestamptz
            + r_created * (:'demo_task_start'::timestamptz - interval '30 days' - :'demo_history_start'::timestamptz)
    END;

-- A disabled host was enabled until an admin disabled it, and about one enabled host in
-- ten had its capacity changed once. Both leave a revoked host_config row.
UPDATE demo_host_state
SET changed_at = CASE
    WHEN NOT enabled THEN greatest(created_at + interval '1 day',
                                   :'demo_now'::timestamptz - interval '1 hour' - r_history * interval '60 days')
    WHEN r_history < 0.10 AND NOT never_started
        THEN created_at + (0.2 + 6 * r_history) * (:'demo_now'::timestamptz - created_at)
END;

INSERT INTO users (id, name, status, usertype)
SELECT user_id, name, 0, 1 FROM demo_host_state ORDER BY id;

-- task_load and ready are set from the generated tasks further down.
INSERT INTO host (id, user_id, name, update_time, task_load, ready)
SELECT id, user_id, name, update_time, 0, FALSE FROM demo_host_state ORDER BY id;

INSERT INTO host_config (host_id, arches, capacity, description, comment, enabled,
                         create_event, revoke_event, creator_id, revoker_id, active)
SELECT id, arches,
       CASE WHEN NOT enabled THEN capacity WHEN capacity >= 4 THEN capacity / 2 ELSE capacity + 2 END,
       description, NULL, TRUE,
       pg_temp.event_at(created_at), pg_temp.event_at(changed_at), 1, 1, NULL
FROM (SELECT *,
             CASE kind WHEN 'hw' THEN 'bare metal builder' ELSE 'KVM guest' END AS description
      FROM demo_host_state) AS h
WHERE changed_at IS NOT NULL
UNION ALL
SELECT id, arches, capacity,
       CASE kind WHEN 'hw' THEN 'bare metal builder' ELSE 'KVM guest' END,
       CASE
           WHEN enabled THEN NULL
           WHEN NOT live THEN pg_temp.pick(ARRAY['powered off: failed disk', 'powered off: hypervisor retired',
                                                 'powered off: memory errors'], r_comment)
           ELSE pg_temp.pick(ARRAY['draining for OS upgrade', 'investigating failed builds',
                                   'reserved for kernel testing'], r_comment)
       END,
       enabled,
       pg_temp.event_at(coalesce(changed_at, created_at)), NULL, 1, NULL, TRUE
FROM demo_host_state;

-- Channel membership by host kind. Every host listens on "default", and the disabled
-- "appliance" channel keeps two hardware hosts.
CREATE TEMP TABLE demo_host_channel AS
SELECT h.id AS host_id, c.id AS channel_id, c.name AS channel
FROM demo_host_state AS h
CROSS JOIN LATERAL unnest(array_remove(ARRAY[
    'default',
    CASE WHEN (kind = 'x86' AND kind_number % 4 = 0) OR (kind = 'a64' AND kind_number % 6 = 0)
         THEN 'createrepo' END,
    CASE WHEN kind IN ('x86', 'a64', 'ppc', 's390x') AND kind_number % 6 = 1 THEN 'container' END,
    CASE WHEN (kind = 'x86' AND kind_number % 10 = 2) OR (kind = 'a64' AND kind_number % 10 = 3)
              OR kind = 'hw' THEN 'compose' END,
    CASE WHEN kind = 'x86' AND kind_number % 25 = 3 THEN 'maven' END,
    CASE WHEN kind = 'hw' OR (kind = 'a64' AND kind_number % 8 = 2) THEN 'image' END,
    CASE WHEN kind = 'hw' OR (kind = 'a64' AND kind_number % 8 = 2) THEN 'livemedia' END,
    CASE WHEN kind = 'hw' THEN 'livecd' END,
    CASE WHEN kind = 'hw' AND kind_number <= 2 THEN 'appliance' END], NULL)) AS m (channel)
JOIN channels AS c ON c.name = m.channel;

INSERT INTO host_channels (host_id, channel_id, create_event, creator_id)
SELECT m.host_id, m.channel_id, pg_temp.event_at(h.created_at), 1
FROM demo_host_channel AS m
JOIN demo_host_state AS h ON h.id = m.host_id;

-- About one host in sixteen left a channel: a revoked row, half-way through its life.
INSERT INTO host_channels (host_id, channel_id, create_event, revoke_event, creator_id,
                           revoker_id, active)
SELECT h.id, c.id, pg_temp.event_at(h.created_at),
       pg_temp.event_at(h.created_at + (:'demo_now'::timestamptz - h.created_at) / 2), 1, 1, NULL
FROM demo_host_state AS h
JOIN channels AS c ON c.name = 'maven'
WHERE h.r_history >= 0.10 AND h.r_history < 0.16 AND NOT h.never_started
  AND NOT EXISTS (SELECT FROM demo_host_channel AS m
                  WHERE m.host_id = h.id AND m.channel_id = c.id);

-- Hosts that may run each channel and arch, where noarch runs anywhere in the channel.
-- all_hosts lists every host that ever ran (for finished tasks), usable_hosts the ones
-- that may take work now (for assigned and open tasks).
CREATE TEMP TABLE demo_pool AS
SELECT m.channel_id, a.arch,
       array_agg(h.id ORDER BY h.id) AS all_hosts,
       array_agg(h.id ORDER BY h.id) FILTER (WHERE h.usable) AS usable_hosts
FROM demo_host_state AS h
JOIN demo_host_channel AS m ON m.host_id = h.id
CROSS JOIN LATERAL unnest(string_to_array(h.arches, ' ') || 'noarch'::text) AS a (arch)
WHERE NOT h.never_started
GROUP BY m.channel_id, a.arch;

-- Releases and tags --------------------------------------------------------------------
-- Fedora branches every 180 days and goes end-of-life 580 days after branching. The newest
-- Fedora is rawhide. Each release has twelve tags, and side tags inherit its build tag.

CREATE TEMP TABLE demo_dist AS
SELECT d.name, d.family, d.fedora_index, d.dist_tag,
       :'demo_history_start'::timestamptz + d.offset_days * interval '1 day' AS created_at,
       CASE WHEN d.family = 'fedora'
                 AND :'demo_history_start'::timestamptz + (d.offset_days + 580) * interval '1 day'
                     < :'demo_now'::timestamptz
            THEN :'demo_history_start'::timestamptz + (d.offset_days + 580) * interval '1 day'
       END AS eol_at,
       CASE WHEN d.family = 'fedora' THEN 'x86_64 i686 aarch64 ppc64le s390x'
            ELSE 'x86_64 aarch64 ppc64le s390x' END AS arches
FROM (VALUES
    ('f39', 'fedora', 0, 'fc39', 0),
    ('f40', 'fedora', 1, 'fc40', 180),
    ('f41', 'fedora', 2, 'fc41', 360),
    ('f42', 'fedora', 3, 'fc42', 540),
    ('f43', 'fedora', 4, 'fc43', 720),
    ('f44', 'fedora', 5, 'fc44', 900),
    ('epel8', 'epel', NULL, 'el8', 0),
    ('epel9', 'epel', NULL, 'el9', 0),
    ('epel10', 'epel', NULL, 'el10', 450)) AS d (name, family, fedora_index, dist_tag, offset_days);

CREATE TEMP TABLE demo_suffix (position integer, suffix text);
INSERT INTO demo_suffix VALUES
    (0, ''), (1, '-build'), (2, '-override'), (3, '-updates'), (4, '-updates-candidate'),
    (5, '-updates-testing'), (6, '-updates-testing-pending'), (7, '-updates-pending'),
    (8, '-signing-pending'), (9, '-container-build'), (10, '-flatpak-build'), (11, '-infra');

-- 30 % of the side tags were deleted after 1 to 30 days, and the others still exist. Most
-- belong to the rawhide of their time, some to the stable Fedora before it, a few to EPEL.
CREATE TEMP TABLE demo_side_tag AS
SELECT j,
       :'demo_history_start'::timestamptz + interval '400 days'
           + random() * (:'demo_now'::timestamptz - interval '1 hour'
                         - :'demo_history_start'::timestamptz - interval '400 days') AS created_at,
       random() AS r_dist,
       random() AS r_epel,
       random() * interval '29 days' + interval '1 day' AS lifetime,
       random() >= 0.3 AS kept,
       5 + floor(random() * :demo_packagers)::integer AS owner
FROM generate_series(1, greatest(0, :tags - 108)) AS j
ORDER BY j;

CREATE TEMP TABLE demo_tag AS
SELECT row_number() OVER (ORDER BY created_at, sort_key, base_name)::integer AS id, t.*
FROM (
    SELECT d.name AS dist, s.suffix, d.name || s.suffix AS base_name,
           d.created_at + s.position * interval '1 minute' AS created_at,
           CASE WHEN s.suffix = '-infra' THEN d.eol_at END AS deleted_at,
           d.eol_at, FALSE AS side, 1 AS owner, s.position AS sort_key
    FROM demo_dist AS d CROSS JOIN demo_suffix AS s
    UNION ALL
    SELECT CASE
               WHEN r_dist < 0.9 THEN pg_temp.fedora_at(st.created_at, CASE WHEN r_dist < 0.7 THEN 0 ELSE 1 END)
               WHEN r_epel < 0.5 OR st.created_at < (SELECT created_at FROM demo_dist WHERE name = 'epel10')
                   THEN 'epel9'
               ELSE 'epel10'
           END,
           '-build-side', NULL,
           st.created_at,
           CASE WHEN NOT st.kept AND st.created_at + st.lifetime < :'demo_now'::timestamptz - interval '10 minutes'
                THEN st.created_at + st.lifetime END,
           NULL, TRUE, st.owner, 100 + st.j
    FROM demo_side_tag AS st) AS t;

ALTER TABLE demo_tag ADD COLUMN name text;
UPDATE demo_tag SET name = coalesce(base_name, dist || '-build-side-' || id);
CREATE INDEX ON demo_tag (name);
ANALYZE demo_tag;

INSERT INTO tag (id, name) SELECT id, name FROM demo_tag ORDER BY id;

-- A release's tags are locked at end of life, which leaves a revoked unlocked row and an
-- active locked one. Deleted tags keep their tag row and only have a revoked configuration.
INSERT INTO tag_config (tag_id, arches, perm_id, locked, create_event, revoke_event,
                        creator_id, revoker_id, active)
SELECT t.id, CASE WHEN t.suffix IN ('-build', '-container-build', '-flatpak-build') THEN d.arches END,
       NULL::integer, FALSE, pg_temp.event_at(t.created_at),
       pg_temp.event_at(coalesce(t.deleted_at, CASE WHEN NOT t.side THEN t.eol_at END)),
       t.owner, CASE WHEN t.deleted_at IS NOT NULL OR (t.eol_at IS NOT NULL AND NOT t.side) THEN t.owner END,
       CASE WHEN t.deleted_at IS NULL AND (t.eol_at IS NULL OR t.side) THEN TRUE END
FROM demo_tag AS t
JOIN demo_dist AS d ON d.name = t.dist
UNION ALL
SELECT t.id, CASE WHEN t.suffix IN ('-build', '-container-build', '-flatpak-build') THEN d.arches END,
       NULL, TRUE, pg_temp.event_at(t.eol_at), NULL, 1, NULL, TRUE
FROM demo_tag AS t
JOIN demo_dist AS d ON d.name = t.dist
WHERE NOT t.side AND t.eol_at IS NOT NULL AND t.deleted_at IS NULL;

-- Inheritance inside a release: updates tags chain down to the release tag, the build tag
-- reaches it through -override. The build tag's original direct link to the release tag
-- was replaced after 30 days. Links of deleted tags are revoked with the tag.
CREATE TEMP TABLE demo_link (child text, parent text, priority integer, maxdepth integer,
                             intransitive boolean, pkg_filter text);
INSERT INTO demo_link VALUES
    ('-updates', '', 0, NULL, FALSE, NULL),
    ('-updates-candidate', '-updates', 0, NULL, FALSE, NULL),
    ('-updates-testing', '-updates', 0, NULL, FALSE, NULL),
    ('-updates-testing-pending', '-updates-testing', 0, NULL, FALSE, NULL),
    ('-updates-pending', '-updates', 0, NULL, FALSE, NULL),
    ('-signing-pending', '-updates-candidate', 0, NULL, FALSE, NULL),
    ('-override', '-updates', 0, NULL, FALSE, NULL),
    ('-build', '-override', 0, NULL, FALSE, NULL),
    ('-container-build', '-build', 0, NULL, TRUE, NULL),
    ('-flatpak-build', '-build', 0, 3, FALSE, NULL),
    ('-infra', '-updates', 0, NULL, FALSE, '^(python|perl|golang)-');

INSERT INTO tag_inheritance (tag_id, parent_id, priority, maxdepth, intransitive, noconfig,
                             pkg_filter, create_event, revoke_event, creator_id, revoker_id, active)
SELECT child.id, parent.id, l.priority, l.maxdepth, l.intransitive, FALSE, l.pkg_filter,
       pg_temp.event_at(d.created_at + interval '20 minutes'),
       pg_temp.event_at(child.deleted_at), 1,
       CASE WHEN child.deleted_at IS NOT NULL THEN 1 END,
       CASE WHEN child.deleted_at IS NULL THEN TRUE END
FROM demo_link AS l
CROSS JOIN demo_dist AS d
JOIN demo_tag AS child ON child.name = d.name || l.child
JOIN demo_tag AS parent ON parent.name = d.name || l.parent
UNION ALL
SELECT child.id, parent.id, 10, NULL, FALSE, FALSE, NULL,
       pg_temp.event_at(d.created_at + interval '20 minutes'),
       pg_temp.event_at(d.created_at + interval '30 days'), 1, 1, NULL
FROM demo_dist AS d
JOIN demo_tag AS child ON child.name = d.name || '-build'
JOIN demo_tag AS parent ON parent.name = d.name
UNION ALL
SELECT t.id, parent.id, 0, NULL, FALSE, FALSE, NULL,
       pg_temp.event_at(t.created_at), pg_temp.event_at(t.deleted_at), t.owner,
       CASE WHEN t.deleted_at IS NOT NULL THEN t.owner END,
       CASE WHEN t.deleted_at IS NULL THEN TRUE END
FROM demo_tag AS t
JOIN demo_tag AS parent ON parent.name = t.dist || '-build'
WHERE t.side;

-- Build targets: three per release (removed at end of life), "rawhide" (repointed at each
-- branching, which leaves revoked rows), and one per side tag, removed with it.
CREATE TEMP TABLE demo_target AS
SELECT row_number() OVER (ORDER BY created_at, name)::integer AS id, t.*
FROM (
    SELECT d.name || v.suffix AS name, build.id AS build_tag, dest.id AS dest_tag,
           d.created_at + interval '30 minutes' AS created_at, d.eol_at AS removed_at, 1 AS owner
    FROM demo_dist AS d
    CROSS JOIN (VALUES ('', '-build'), ('-candidate', '-build'),
                       ('-container-candidate', '-container-build')) AS v (suffix, build_suffix)
    JOIN demo_tag AS build ON build.name = d.name || v.build_suffix
    JOIN demo_tag AS dest ON dest.name = d.name || '-updates-candidate'
    UNION ALL
    SELECT 'rawhide', NULL, NULL, :'demo_history_start'::timestamptz + interval '30 minutes', NULL, 1
    UNION ALL
    SELECT t.name, t.id, t.id, t.created_at, t.deleted_at, t.owner
    FROM demo_tag AS t
    WHERE t.side) AS t;

INSERT INTO build_target (id, name) SELECT id, name FROM demo_target ORDER BY id;

INSERT INTO build_target_config (build_target_id, build_tag, dest_tag, create_event,
                                 revoke_event, creator_id, revoker_id, active)
SELECT id, build_tag, dest_tag, pg_temp.event_at(created_at), pg_temp.event_at(removed_at),
       owner, CASE WHEN removed_at IS NOT NULL THEN owner END,
       CASE WHEN removed_at IS NULL THEN TRUE END
FROM demo_target
WHERE name <> 'rawhide'
UNION ALL
SELECT target.id, build.id, dest.id,
       pg_temp.event_at(d.created_at + interval '30 minutes'),
       pg_temp.event_at(next.created_at + interval '30 minutes'), 1,
       CASE WHEN next.name IS NOT NULL THEN 1 END,
       CASE WHEN next.name IS NULL THEN TRUE END
FROM demo_dist AS d
JOIN demo_target AS target ON target.name = 'rawhide'
JOIN demo_tag AS build ON build.name = d.name || '-build'
JOIN demo_tag AS dest ON dest.name = d.name || '-updates-candidate'
LEFT JOIN demo_dist AS next ON next.family = 'fedora' AND next.fedora_index = d.fedora_index + 1
WHERE d.family = 'fedora';

-- Packages -----------------------------------------------------------------------------
-- Names are prefix + word + variant. They are unique because no word contains a hyphen,
-- equals a prefix without its hyphen or starts with "lib". The newest 15 % of packages were
-- added during the three years, 4 % were retired, and each EPEL release carries a subset.

CREATE TEMP TABLE demo_package AS
SELECT i + 1 AS id,
       (ARRAY['', 'python-', 'perl-', 'rust-', 'golang-', 'nodejs-', 'ghc-', 'php-', 'R-',
              'ocaml-', 'mingw-', 'lib'])[1 + i % 12]
       || words.list[1 + (i / 12) % cardinality(words.list)]
       || CASE
              WHEN i / (12 * cardinality(words.list)) = 0 THEN ''
              WHEN i / (12 * cardinality(words.list)) <= 16 THEN
                  (ARRAY['-utils', '-extras', '-compat', '-plugins', '-tools', '-bindings', '-doc',
                         '-data', '-cli', '-core', '-common', '-server', '-client', '-devel-docs',
                         '-fonts', '-tests'])[i / (12 * cardinality(words.list))]
              ELSE '-' || (i / (12 * cardinality(words.list)))::text
          END AS name,
       5 + floor(random() * :demo_packagers)::integer AS maintainer,
       random() AS r_retired,
       random() AS r_retired_at,
       random() AS r_epel8,
       random() AS r_epel9,
       random() AS r_epel10,
       random() AS r_owner
FROM generate_series(0, :packages - 1) AS i
CROSS JOIN (SELECT ARRAY[
    'requests', 'flask', 'numpy', 'yaml', 'json', 'xmlsec', 'http', 'tls', 'crypto', 'zlib',
    'sqlite', 'pango', 'cairo', 'gtk', 'qt', 'boost', 'curl', 'bash', 'zsh', 'vim', 'emacs',
    'git', 'mercurial', 'openssl', 'nss', 'glib', 'gettext', 'pcre', 'expat', 'ncurses',
    'readline', 'bzip', 'xz', 'zstd', 'lz', 'snappy', 'protobuf', 'grpc', 'thrift', 'avro',
    'arrow', 'parquet', 'pandas', 'scipy', 'sympy', 'mpmath', 'jinja', 'markupsafe', 'click',
    'rich', 'attrs', 'pytest', 'tox', 'nose', 'mock', 'six', 'dateutil', 'pytz', 'tzdata',
    'babel', 'sphinx', 'docutils', 'pygments', 'lxml', 'chardet', 'idna', 'urllib',
    'certifi', 'cffi', 'pycparser', 'wheel', 'setuptools', 'pip', 'poetry', 'hatch', 'flit',
    'cython', 'pybind', 'eigen', 'blas', 'lapack', 'fftw', 'hdf', 'netcdf', 'gdal', 'proj',
    'geos', 'shapely', 'fiona', 'tokio', 'serde', 'clap', 'regex', 'rand', 'log', 'anyhow',
    'thiserror', 'hyper', 'tower', 'mio'] AS list) AS words
ORDER BY i;

ALTER TABLE demo_package ADD COLUMN intro_at timestamptz, ADD COLUMN retired_at timestamptz;
UPDATE demo_package
SET intro_at = CASE
        WHEN id <= 0.85 * :packages THEN :'demo_history_start'::timestamptz - interval '1 day'
        ELSE :'demo_history_start'::timestamptz
            + (id - 0.85 * :packages) / (0.15 * :packages)
              * (:'demo_now'::timestamptz - interval '30 days' - :'demo_history_start'::timestamptz)
    END;
UPDATE demo_package
SET retired_at = intro_at + interval '30 days'
        + r_retired_at * (:'demo_now'::timestamptz - interval '31 days' - intro_at)
WHERE r_retired < 0.04 AND intro_at < :'demo_now'::timestamptz - interval '31 days';

INSERT INTO package (id, name) SELECT id, name FROM demo_package ORDER BY id;
ANALYZE demo_package;

-- Package lists sit on the release tags. A Fedora release lists what existed while it was
-- rawhide. A package retired by then is blocked from that release on, which leaves a
-- revoked unblocked row and an active blocked one. Half a percent of listings were removed
-- again (revoked, no successor), and their owner row stays active, as in Koji.
CREATE TEMP TABLE demo_listing AS
SELECT p.id AS package_id, t.id AS tag_id, p.maintainer, p.r_owner,
       greatest(d.created_at + interval '5 minutes', p.intro_at) AS listed_at,
       CASE WHEN d.family = 'fedora' AND p.retired_at < coalesce(next.created_at, :'demo_now'::timestamptz)
            THEN p.retired_at END AS blocked_at,
       (p.id * 7919 + t.id * 104729) % 1000 < 5 AS removed
FROM demo_package AS p
CROSS JOIN demo_dist AS d
JOIN demo_tag AS t ON t.name = d.name
LEFT JOIN demo_dist AS next ON next.family = 'fedora' AND next.fedora_index = d.fedora_index + 1
WHERE CASE d.name
          WHEN 'epel8' THEN p.r_epel8 < 0.25
          WHEN 'epel9' THEN p.r_epel9 < 0.35
          WHEN 'epel10' THEN p.r_epel10 < 0.20
          ELSE p.intro_at < coalesce(next.created_at, :'demo_now'::timestamptz)
      END;

INSERT INTO tag_packages (package_id, tag_id, blocked, create_event, revoke_event,
                          creator_id, revoker_id, active)
SELECT package_id, tag_id, FALSE, created, revoked, 1,
       CASE WHEN revoked IS NOT NULL THEN 1 END,
       CASE WHEN revoked IS NULL THEN TRUE END
FROM (
    SELECT package_id, tag_id,
           pg_temp.event_at(listed_at) AS created,
           CASE
               WHEN blocked_at IS NOT NULL THEN pg_temp.event_at(blocked_at)
               WHEN removed AND listed_at + interval '60 days' < :'demo_now'::timestamptz
                   THEN pg_temp.event_at(listed_at + interval '60 days')
           END AS revoked
    FROM demo_listing
    WHERE blocked_at IS NULL OR blocked_at > listed_at + interval '1 day') AS l
WHERE revoked IS NULL OR revoked > created
UNION ALL
SELECT package_id, tag_id, TRUE, pg_temp.event_at(greatest(blocked_at, listed_at)), NULL, 1, NULL, TRUE
FROM demo_listing
WHERE blocked_at IS NOT NULL;

-- Every listing has an owner. 3 % changed owner once, which leaves a revoked row.
INSERT INTO tag_package_owners (package_id, tag_id, owner, create_event, revoke_event,
                                creator_id, revoker_id, active)
SELECT package_id, tag_id, 5 + (maintainer + 17) % :demo_packagers,
       pg_temp.event_at(listed_at), pg_temp.event_at(listed_at + interval '90 days'), 1, 1, NULL
FROM demo_listing
WHERE r_owner < 0.03 AND listed_at + interval '90 days' < :'demo_now'::timestamptz
UNION ALL
SELECT package_id, tag_id, maintainer,
       pg_temp.event_at(CASE WHEN r_owner < 0.03 AND listed_at + interval '90 days' < :'demo_now'::timestamptz
                             THEN listed_at + interval '90 days' ELSE listed_at END),
       NULL, 1, NULL, TRUE
FROM demo_listing;

-- Tasks --------------------------------------------------------------------------------
-- Tasks are generated as families: a top-level task and the subtasks it spawns. Each
-- family gets a kind, a release and planned times, and its state follows from comparing
-- the plan with the loading time. Regular families arrive evenly over the last 90 days; the
-- mass rebuild adds background-priority build families over the last two hours.

CREATE TEMP TABLE demo_family AS
SELECT f AS id, FALSE AS burst, NULL::integer AS burst_number,
       :'demo_now'::timestamptz
           - (:demo_regular_families - f + random()) * :demo_family_seconds * interval '1 second' AS created,
       random() AS r_kind, random() AS r_dist, random() AS r_epel, random() AS r_package,
       random() AS r_scratch, random() AS r_arches, random() AS r_outcome, random() AS r_stage,
       random() AS r_failed_worker, random() AS r_cancel, random() AS r_owner,
       random() AS r_duration1, random() AS r_duration2, random() AS r_wait, random() AS r_srpm_wait,
       random() AS r_srpm_duration, random() AS r_tail_wait, random() AS r_tail_duration,
       random() AS r_host, random() AS r_srpm_host, random() AS r_tail_host, random() AS r_lag
FROM generate_series(1, :demo_regular_families) AS f
ORDER BY f;

INSERT INTO demo_family
SELECT :demo_regular_families + j, TRUE, j,
       :'demo_now'::timestamptz - interval '2 hours'
           + (j - 0.5) * 7200.0 / :demo_burst_families * interval '1 second',
       random(), random(), random(), random(), random(), random(), random(), random(),
       random(), random(), random(), random(), random(), random(), random(), random(),
       random(), random(), random(), random(), random(), random()
FROM generate_series(1, :demo_burst_families) AS j
ORDER BY j;

-- Family kind, release, package and the arches its subtasks run on. Build durations are
-- log-normal per package (median 8 minutes, capped at 10 hours).
CREATE TEMP TABLE demo_family_plan AS
SELECT f.*,
       f.kind = 'build' AND NOT f.burst AND f.r_scratch < 0.3 AS scratch,
       CASE
           WHEN f.kind = 'build' AND f.r_outcome < 0.80 THEN 'closed'
           WHEN f.kind = 'build' AND f.r_outcome < 0.95 THEN 'failed'
           WHEN f.kind = 'build' THEN 'canceled'
           WHEN f.r_outcome < 0.95 THEN 'closed'
           WHEN f.r_outcome < 0.99 THEN 'failed'
           ELSE 'canceled'
       END AS outcome,
       CASE f.kind
           WHEN 'build' THEN CASE
               WHEN f.r_arches < 0.3 THEN ARRAY['noarch']
               WHEN d.family = 'fedora' AND f.r_arches < 0.55
                   THEN ARRAY['x86_64', 'i686', 'aarch64', 'ppc64le', 's390x']
               ELSE ARRAY['x86_64', 'aarch64', 'ppc64le', 's390x'] END
           WHEN 'newRepo' THEN string_to_array(d.arches, ' ')
           WHEN 'distRepo' THEN ARRAY['x86_64', 'aarch64', 'ppc64le', 's390x']
           WHEN 'image' THEN ARRAY['x86_64', 'aarch64']
           WHEN 'livemedia' THEN CASE WHEN f.r_arches < 0.5 THEN ARRAY['x86_64']
                                      ELSE ARRAY['x86_64', 'aarch64'] END
           ELSE ARRAY[]::text[]
       END AS worker_arches,
       CASE
           WHEN f.burst THEN 4
           WHEN f.kind = 'newRepo' THEN 2
           WHEN f.kind IN ('runroot', 'image', 'livemedia', 'distRepo') THEN 4
           WHEN f.kind = 'tagBuild' AND f.r_owner < 0.8 THEN 3
           WHEN f.kind = 'build' AND f.r_owner < 0.7 THEN p.maintainer
           ELSE 5 + floor(f.r_owner * :demo_packagers)::integer
       END AS owner,
       -- Koji's priorities: 20 by default, 25 for background builds, 15 for repo tasks
       -- and 10 for tagBuild calls. Subtasks get their parent's priority minus one.
       CASE
           WHEN f.burst THEN 25
           WHEN f.kind IN ('newRepo', 'distRepo') THEN 15
           WHEN f.kind = 'tagBuild' THEN 10
           ELSE 20
       END AS priority,
       CASE
           WHEN f.kind IN ('newRepo', 'distRepo') THEN 'createrepo'
           WHEN f.kind = 'image' THEN 'image'
           WHEN f.kind = 'livemedia' THEN 'livemedia'
           WHEN f.kind = 'runroot' THEN 'compose'
           WHEN f.kind = 'buildContainer' THEN 'container'
           ELSE 'default'
       END AS channel,
       CASE
           WHEN f.kind = 'runroot' AND f.r_arches < 0.8 THEN 'x86_64'
           WHEN f.kind = 'runroot' THEN 'aarch64'
           ELSE 'noarch'
       END AS top_arch,
       f.created + (2 + f.r_wait * 40) * interval '1 second' AS parent_start,
       f.created + (3 + f.r_wait * 40) * interval '1 second' AS srpm_create,
       f.created + (8 + f.r_wait * 40 + f.r_srpm_wait * 50) * interval '1 second' AS srpm_start,
       f.created + (68 + f.r_wait * 40 + f.r_srpm_wait * 50 + f.r_srpm_duration * 300)
           * interval '1 second' AS srpm_end
FROM (
    SELECT f.*,
           CASE
               WHEN f.burst THEN 'build'
               WHEN f.r_kind < 0.26 THEN 'build'
               WHEN f.r_kind < 0.36 THEN 'newRepo'
               WHEN f.r_kind < 0.56 THEN 'buildNotification'
               WHEN f.r_kind < 0.76 THEN 'tagNotification'
               WHEN f.r_kind < 0.88 THEN 'tagBuild'
               WHEN f.r_kind < 0.91 THEN 'runroot'
               WHEN f.r_kind < 0.93 THEN 'image'
               WHEN f.r_kind < 0.94 THEN 'livemedia'
               WHEN f.r_kind < 0.95 THEN 'distRepo'
               WHEN f.r_kind < 0.97 THEN 'buildContainer'
               ELSE 'waitrepo'
           END AS kind,
           CASE
               WHEN f.burst THEN pg_temp.fedora_at(f.created, 0)
               WHEN f.r_dist < 0.75 THEN pg_temp.fedora_at(f.created, floor(f.r_dist / 0.25)::integer)
               WHEN f.r_epel < 0.5 OR f.created < (SELECT created_at FROM demo_dist WHERE name = 'epel10')
                   THEN 'epel9'
               ELSE 'epel10'
           END AS dist,
           1 + floor(0.97 * :packages * power(f.r_package, 1.7))::integer AS package_id,
           least(600.0, greatest(0.5, exp(ln(8.0) + sqrt(-2 * ln(1 - f.r_duration1))
                                                     * cos(2 * pi() * f.r_duration2)))) AS build_minutes
    FROM demo_family AS f) AS f
JOIN demo_dist AS d ON d.name = f.dist
JOIN demo_package AS p ON p.id = f.package_id;

CREATE UNIQUE INDEX ON demo_family_plan (id);
-- Temporary tables get no statistics unless analyzed, and the joins below need row counts.
ANALYZE demo_family_plan (id, kind, scratch);

-- Subtasks that do the work: buildArch per arch, createrepo per arch of the build tag, and
-- the image, live media and dist repo equivalents.
CREATE TEMP TABLE demo_worker AS
SELECT f.id AS family_id, w.number, w.arch,
       random() AS r_wait, random() AS r_duration, random() AS r_host, random() AS r_lag
FROM (SELECT id, worker_arches FROM demo_family_plan ORDER BY id) AS f
CROSS JOIN LATERAL unnest(f.worker_arches) WITH ORDINALITY AS w (arch, number);

-- A worker waits for a free host, longer on the scarce arches. In the mass rebuild each
-- arch starts one task per "drain" interval, so ppc64le and s390x fall behind and keep a
-- queue of free tasks.
CREATE TEMP TABLE demo_worker_plan AS
SELECT w.*, f.kind, t.create_time, t.start_time,
       t.start_time + t.duration * interval '1 second' AS end_time
FROM demo_worker AS w
JOIN demo_family_plan AS f ON f.id = w.family_id
CROSS JOIN LATERAL (
    SELECT CASE WHEN f.kind = 'build' THEN f.srpm_end + interval '2 seconds'
                ELSE f.parent_start + interval '2 seconds' END AS create_time) AS c
CROSS JOIN LATERAL (
    SELECT c.create_time,
           greatest(
               c.create_time + CASE
                   WHEN f.kind <> 'build' THEN 2 + w.r_wait * 30
                   WHEN w.arch = 'aarch64' THEN 10 + w.r_wait * 170
                   WHEN w.arch = 'ppc64le' THEN 20 + w.r_wait * 580
                   WHEN w.arch = 's390x' THEN 30 + w.r_wait * 1170
                   ELSE 5 + w.r_wait * 85
               END * interval '1 second',
               CASE WHEN f.burst THEN :'demo_now'::timestamptz - interval '2 hours'
                   + f.burst_number * 7200.0 / :demo_burst_families
                     * CASE w.arch WHEN 'aarch64' THEN 1.2 WHEN 'ppc64le' THEN 2.0
                                   WHEN 's390x' THEN 3.0 ELSE 0.5 END
                     * interval '1 second' END) AS start_time,
           CASE f.kind
               WHEN 'build' THEN f.build_minutes * 60 * (0.9 + 0.2 * w.r_duration)
                   * CASE w.arch WHEN 'aarch64' THEN 1.3 WHEN 'ppc64le' THEN 1.5
                                 WHEN 's390x' THEN 1.8 WHEN 'noarch' THEN 0.6 ELSE 1.0 END
               WHEN 'newRepo' THEN 60 + w.r_duration * 420
               WHEN 'distRepo' THEN 300 + w.r_duration * 900
               WHEN 'image' THEN 600 + w.r_duration * 1800
               ELSE 1200 + w.r_duration * 2400
           END AS duration) AS t;

-- The planned task rows of every family. Slots order tasks inside a family: 0 the
-- top-level task, 1 the SRPM build, 10 and up the workers, 99 the final tagBuild.
CREATE TEMP TABLE demo_task_plan AS
WITH worker_end AS (
    SELECT family_id, max(end_time) AS end_time FROM demo_worker_plan GROUP BY family_id),
tail AS (
    SELECT f.id AS family_id,
           we.end_time + interval '3 seconds' AS create_time,
           we.end_time + (5 + f.r_tail_wait * 18) * interval '1 second' AS start_time,
           we.end_time + (7 + f.r_tail_wait * 18 + f.r_tail_duration * 13) * interval '1 second' AS end_time
    FROM demo_family_plan AS f
    JOIN worker_end AS we ON we.family_id = f.id
    WHERE f.kind = 'build' AND NOT f.scratch)
SELECT f.id AS family_id, 0 AS slot, f.kind AS method, f.top_arch AS arch, NULL AS label,
       f.created AS create_time, f.parent_start AS start_time,
       coalesce(tail.end_time, we.end_time) + interval '1 second' AS end_time,
       f.r_host, f.r_lag
FROM demo_family_plan AS f
JOIN worker_end AS we ON we.family_id = f.id
LEFT JOIN tail ON tail.family_id = f.id
UNION ALL
SELECT f.id, 0, f.kind, f.top_arch, NULL, f.created, f.parent_start,
       f.parent_start + CASE f.kind
           WHEN 'runroot' THEN 300 + f.r_duration1 * 5100
           WHEN 'buildContainer' THEN 300 + f.r_duration1 * 2100
           WHEN 'waitrepo' THEN 60 + f.r_duration1 * 3540
           ELSE 1 + f.r_duration1 * 15
       END * interval '1 second',
       f.r_host, f.r_lag
FROM demo_family_plan AS f
WHERE cardinality(f.worker_arches) = 0
UNION ALL
SELECT f.id, 1, 'buildSRPMFromSCM', 'noarch', 'srpm', f.srpm_create, f.srpm_start, f.srpm_end,
       f.r_srpm_host, f.r_lag
FROM demo_family_plan AS f
WHERE f.kind = 'build'
UNION ALL
SELECT w.family_id, 9 + w.number::integer,
       CASE w.kind WHEN 'build' THEN 'buildArch' WHEN 'newRepo' THEN 'createrepo'
                   WHEN 'distRepo' THEN 'createdistrepo' WHEN 'image' THEN 'createImage'
                   ELSE 'createLiveMedia' END,
       CASE WHEN w.kind IN ('build', 'image', 'livemedia') THEN w.arch ELSE 'noarch' END,
       w.arch, w.create_time, w.start_time, w.end_time, w.r_host, w.r_lag
FROM demo_worker_plan AS w
UNION ALL
SELECT tail.family_id, 99, 'tagBuild', 'noarch', 'tag', tail.create_time, tail.start_time,
       tail.end_time, f.r_tail_host, f.r_lag
FROM tail
JOIN demo_family_plan AS f ON f.id = tail.family_id;

-- How far each family got. A family whose plan ends after the loading time is still
-- active and is cut at the loading time. A finished family ends as planned (closed), at
-- the end of its failing task (failed: one buildArch or the SRPM build fails, the hub
-- cancels the siblings), or at a random moment (canceled).
CREATE TEMP TABLE demo_family_cut AS
SELECT c.*,
       CASE c.mode
           WHEN 'active' THEN :'demo_now'::timestamptz
           WHEN 'closed' THEN 'infinity'::timestamptz
           WHEN 'failed' THEN failing.end_time
           ELSE c.family_created + c.r_cancel * (c.parent_end - c.family_created)
       END AS cut_time
FROM (
    SELECT f.id AS family_id, f.created AS family_created, f.r_cancel,
           CASE WHEN p.end_time > :'demo_now'::timestamptz THEN 'active' ELSE f.outcome END AS mode,
           CASE
               WHEN p.end_time > :'demo_now'::timestamptz OR f.outcome <> 'failed' THEN NULL
               WHEN cardinality(f.worker_arches) = 0 THEN 0
               WHEN f.kind = 'build' AND f.r_stage < 0.2 THEN 1
               ELSE 10 + floor(f.r_failed_worker * cardinality(f.worker_arches))::integer
           END AS failing_slot,
           p.end_time AS parent_end
    FROM demo_family_plan AS f
    JOIN demo_task_plan AS p ON p.family_id = f.id AND p.slot = 0) AS c
LEFT JOIN demo_task_plan AS failing
    ON failing.family_id = c.family_id AND failing.slot = c.failing_slot;

CREATE UNIQUE INDEX ON demo_family_cut (family_id);
ANALYZE demo_family_cut;

-- Task states at the cut. Active: finished (CLOSED), running (OPEN), assigned to a host a
-- few seconds to two minutes before its planned start (ASSIGNED), or waiting (FREE).
-- Failed or canceled: the failing task and the top-level task end FAILED, tasks that
-- had finished stay CLOSED, the others are CANCELED (with no start_time if they never
-- started). Tasks planned after the cut do not exist.
CREATE TEMP TABLE demo_task_state AS
SELECT p.family_id, p.slot, p.method, p.arch, p.label, p.r_host, c.family_created,
       p.create_time,
       CASE
           WHEN c.mode = 'active' THEN CASE
               WHEN p.end_time <= c.cut_time THEN 2
               WHEN p.start_time <= c.cut_time THEN 1
               WHEN p.start_time - (5 + p.r_lag * 115) * interval '1 second' <= c.cut_time THEN 4
               ELSE 0 END
           WHEN c.mode = 'closed' THEN 2
           WHEN c.mode = 'failed' AND (p.slot = c.failing_slot OR p.slot = 0) THEN 5
           WHEN p.end_time <= c.cut_time THEN 2
           ELSE 3
       END AS state,
       p.start_time, p.end_time, c.cut_time, c.mode, c.failing_slot
FROM demo_task_plan AS p
JOIN demo_family_cut AS c ON c.family_id = p.family_id
WHERE p.create_time <= c.cut_time;

ALTER TABLE demo_task_state
    ADD COLUMN final_start timestamptz,
    ADD COLUMN final_end timestamptz;

UPDATE demo_task_state
SET final_start = CASE
        WHEN state IN (0, 4) THEN NULL
        WHEN state IN (3, 5) AND start_time >= cut_time THEN NULL
        ELSE start_time
    END,
    final_end = CASE
        WHEN state IN (0, 1, 4) THEN NULL
        WHEN mode = 'closed' OR (state = 2) THEN end_time
        WHEN state = 5 AND slot = 0 AND failing_slot > 0 THEN cut_time + interval '1 second'
        ELSE cut_time
    END;

-- Keep the newest :tasks tasks, whole families first. The oldest kept family may lose its
-- last subtasks, never its top-level task. Task ids follow creation time.
CREATE TEMP TABLE demo_task_kept AS
SELECT kept.*, row_number() OVER (ORDER BY create_time, family_id, slot)::integer AS id
FROM (SELECT s.*,
             row_number() OVER (ORDER BY family_created DESC, family_id DESC, slot) AS newest_rank
      FROM demo_task_state AS s) AS kept
WHERE newest_rank <= :tasks;

-- A started or assigned task ran on a host of its channel and arch. Assigned and open
-- tasks run only on hosts that may take work now, and without one a task stays FREE.
CREATE TEMP TABLE demo_task_final AS
SELECT k.id, k.family_id, k.slot, k.method, k.arch, k.label, k.create_time, k.final_end,
       f.channel, h.host_id,
       CASE WHEN k.state IN (1, 4) AND h.host_id IS NULL THEN 0 ELSE k.state END AS state,
       CASE WHEN k.state IN (1, 4) AND h.host_id IS NULL THEN NULL ELSE k.final_start END AS final_start
FROM demo_task_kept AS k
JOIN demo_family_plan AS f ON f.id = k.family_id
JOIN channels AS c ON c.name = f.channel
LEFT JOIN demo_pool AS pool ON pool.channel_id = c.id AND pool.arch = k.arch
CROSS JOIN LATERAL (
    SELECT CASE
               WHEN k.state IN (1, 4) THEN pg_temp.pick(pool.usable_hosts, k.r_host)
               WHEN k.final_start IS NOT NULL THEN pg_temp.pick(pool.all_hosts, k.r_host)
           END AS host_id) AS h;

CREATE UNIQUE INDEX ON demo_task_final (family_id, slot);

-- Families with an OPEN parent that waits on unfinished subtasks (task.waiting). Those
-- subtasks are awaited.
CREATE TEMP TABLE demo_family_waiting AS
SELECT family_id
FROM demo_task_final
GROUP BY family_id
HAVING bool_or(slot = 0 AND state = 1) AND bool_or(slot > 0 AND state IN (0, 1, 4));

INSERT INTO task (id, state, create_time, start_time, completion_time, channel_id, host_id,
                  parent, label, waiting, awaited, owner, method, request, arch, priority, weight)
SELECT k.id, k.state, k.create_time, k.final_start, k.final_end, c.id, k.host_id,
       parent.id, k.label,
       CASE WHEN k.slot = 0 AND cardinality(f.worker_arches) > 0 THEN w.family_id IS NOT NULL END,
       CASE WHEN k.slot > 0 THEN w.family_id IS NOT NULL AND k.state IN (0, 1, 4) END,
       f.owner, k.method,
       pg_temp.xml_call(k.method, CASE k.method
           WHEN 'build' THEN pg_temp.xml_string(source.url) || pg_temp.xml_string(target.name)
               || '<param><value><struct>'
               || CASE WHEN f.scratch THEN '<member><name>scratch</name><value><boolean>1</boolean></value></member>'
                       ELSE '' END
               || '</struct></value></param>'
           WHEN 'buildSRPMFromSCM' THEN pg_temp.xml_string(source.url) || pg_temp.xml_string(build_tag.name)
           WHEN 'buildArch' THEN pg_temp.xml_string('tasks/' || k.family_id % 10000 || '/' || k.family_id
                                                    || '/' || p.name || '.src.rpm')
               || pg_temp.xml_string(build_tag.name) || pg_temp.xml_string(k.arch)
           WHEN 'tagBuild' THEN pg_temp.xml_int(dest_tag.id)
           WHEN 'newRepo' THEN pg_temp.xml_string(build_tag.name)
           WHEN 'createrepo' THEN pg_temp.xml_string(k.label)
           WHEN 'waitrepo' THEN pg_temp.xml_string(build_tag.name)
           WHEN 'runroot' THEN pg_temp.xml_string(build_tag.name) || pg_temp.xml_string(k.arch)
               || pg_temp.xml_string('pungi-make-ostree tree')
           WHEN 'tagNotification' THEN pg_temp.xml_int(dest_tag.id)
           ELSE pg_temp.xml_string(target.name)
       END),
       k.arch,
       f.priority - CASE WHEN k.slot > 0 THEN 1 ELSE 0 END,
       -- kojid sets the weight when it opens a task, and never-opened tasks keep the
       -- default 1.0. tagBuild, waitrepo, runroot, image, livemedia and buildContainer
       -- weights are estimates, the others are the values of kojid's task handlers.
       CASE
           WHEN k.final_start IS NULL THEN 1.0
           WHEN k.method = 'buildArch' THEN 1.5 + least(18.0, 0.75 * f.build_minutes / 60)
           WHEN k.method = 'build' THEN 0.2
           WHEN k.method IN ('newRepo', 'tagNotification', 'buildNotification', 'distRepo', 'tagBuild',
                             'image', 'livemedia') THEN 0.1
           WHEN k.method IN ('createrepo', 'createdistrepo', 'createLiveMedia') THEN 1.5
           WHEN k.method = 'createImage' THEN 2.0
           WHEN k.method = 'waitrepo' THEN 0.2
           WHEN k.method = 'runroot' THEN 2.0
           ELSE 1.0
       END
FROM demo_task_final AS k
JOIN demo_family_plan AS f ON f.id = k.family_id
JOIN channels AS c ON c.name = f.channel
JOIN demo_package AS p ON p.id = f.package_id
JOIN demo_tag AS build_tag ON build_tag.name = f.dist || '-build'
JOIN demo_tag AS dest_tag ON dest_tag.name = f.dist || '-updates-candidate'
JOIN demo_target AS target ON target.name = f.dist
LEFT JOIN demo_task_final AS parent ON parent.family_id = k.family_id AND parent.slot = 0 AND k.slot > 0
LEFT JOIN demo_family_waiting AS w ON w.family_id = k.family_id
CROSS JOIN LATERAL (
    SELECT 'git+https://src.example.org/rpms/' || p.name || '.git#'
           || md5(f.id::text) || substr(md5(f.id::text || 'commit'), 1, 8) AS url) AS source
ORDER BY k.id;

-- Builds -------------------------------------------------------------------------------
-- Every non-scratch build family whose SRPM was built has a build, in the state of its
-- family: COMPLETE, FAILED, CANCELED, or BUILDING while it runs. Older builds predate the
-- 90 days of task history; they are imports with no task (95 % COMPLETE, 5 % DELETED).

CREATE TEMP TABLE demo_build_source AS
SELECT 'task' AS origin, f.id AS key, f.package_id, f.dist, f.owner, parent.id AS task_id,
       srpm.final_end AS start_time, parent.final_end AS completion_time,
       CASE parent.state WHEN 2 THEN 1 WHEN 5 THEN 3 WHEN 3 THEN 4 ELSE 0 END AS state,
       'git+https://src.example.org/rpms/' || p.name || '.git#'
           || md5(f.id::text) || substr(md5(f.id::text || 'commit'), 1, 8) AS source
FROM demo_family_plan AS f
JOIN demo_task_final AS parent ON parent.family_id = f.id AND parent.slot = 0
JOIN demo_task_final AS srpm ON srpm.family_id = f.id AND srpm.slot = 1 AND srpm.state = 2
JOIN demo_package AS p ON p.id = f.package_id
WHERE f.kind = 'build' AND NOT f.scratch;

-- When the families yield more builds than :builds, the oldest are left out.
DELETE FROM demo_build_source
WHERE key IN (SELECT key FROM demo_build_source ORDER BY start_time DESC OFFSET :builds);

SELECT greatest(0, :builds - count(*)) AS demo_imported_builds FROM demo_build_source \gset

CREATE TEMP TABLE demo_import AS
SELECT j, random() AS r_time, random() AS r_package, random() AS r_dist, random() AS r_epel,
       random() AS r_state, random() AS r_owner, random() AS r_duration
FROM generate_series(1, :demo_imported_builds) AS j
ORDER BY j;

INSERT INTO demo_build_source
SELECT 'import', -i.j, 1 + floor(0.97 * :packages * power(i.r_package, 1.7))::integer,
       CASE
           WHEN i.r_dist < 0.75 THEN pg_temp.fedora_at(t.completion_time, floor(i.r_dist / 0.25)::integer)
           WHEN i.r_epel < 0.5 OR t.completion_time < (SELECT created_at FROM demo_dist WHERE name = 'epel10')
               THEN 'epel9'
           ELSE 'epel8'
       END,
       5 + floor(i.r_owner * :demo_packagers)::integer, NULL,
       t.completion_time - (300 + i.r_duration * 7000) * interval '1 second',
       t.completion_time,
       CASE WHEN i.r_state < 0.95 THEN 1 ELSE 2 END,
       NULL
FROM demo_import AS i
CROSS JOIN LATERAL (
    SELECT :'demo_history_start'::timestamptz + interval '2 hours'
        + (i.j - i.r_time) / greatest(1, :demo_imported_builds)
          * (:'demo_task_start'::timestamptz - :'demo_history_start'::timestamptz - interval '2 hours')
        AS completion_time) AS t;

-- Versions count up per package, so (package, version, release) stays unique. The
-- release carries the dist tag (1.fc41, 2.el9).
CREATE TEMP TABLE demo_build AS
SELECT row_number() OVER (ORDER BY s.start_time, s.key)::integer AS id, s.*,
       (n / 12 + 1) || '.' || (n / 3 % 4) || '.' || (n % 3) AS version,
       (1 + n % 2) || '.' || d.dist_tag AS release
FROM (SELECT b.*,
             row_number() OVER (PARTITION BY package_id ORDER BY start_time, key) - 1 AS n
      FROM demo_build_source AS b) AS s
JOIN demo_dist AS d ON d.name = s.dist;

INSERT INTO build (id, volume_id, pkg_id, version, release, epoch, draft, source, create_event,
                   start_time, completion_time, state, task_id, owner)
SELECT id, 0, package_id, version, release, NULL, FALSE, source, pg_temp.event_at(start_time),
       start_time, completion_time, state, task_id, owner
FROM demo_build
ORDER BY id;

CREATE UNIQUE INDEX ON demo_build (id);
ANALYZE demo_build;

-- Tagging --------------------------------------------------------------------------------
-- A finished build lands in <release>-updates-candidate. For the release that is rawhide
-- at the time, gating then moves it into the release tag itself. For the others an update
-- moves it to -updates-testing after minutes to two days (90 %) and to -updates after 3 to
-- 14 more days (88 % of those). Each move revokes the old row and creates the new one in
-- the same event. A deleted build lost its only listing before deletion.

CREATE TEMP TABLE demo_build_random AS
SELECT id, random() AS r_testing, random() AS r_testing_delay, random() AS r_stable,
       random() AS r_stable_delay, random() AS r_side, random() AS r_side_delay
FROM (SELECT id FROM demo_build WHERE state IN (1, 2) ORDER BY id) AS b
ORDER BY id;

CREATE TEMP TABLE demo_tagging AS
SELECT b.id AS build_id, b.owner, b.state, b.dist, b.origin, b.completion_time, r.*,
       b.dist = pg_temp.fedora_at(b.completion_time, 0) AS rawhide,
       pg_temp.event_at(b.completion_time + interval '1 minute') AS candidate_event,
       b.completion_time + interval '10 minutes' + r.r_testing_delay * interval '2 days' AS testing_at
FROM demo_build AS b
JOIN demo_build_random AS r ON r.id = b.id;

ALTER TABLE demo_tagging ADD COLUMN testing_event integer, ADD COLUMN stable_event integer;

UPDATE demo_tagging
SET testing_event = CASE
    WHEN state = 2 OR (r_testing < 0.9 AND testing_at < :'demo_now'::timestamptz)
        THEN greatest(pg_temp.event_at(testing_at), candidate_event + 1)
END;
UPDATE demo_tagging SET testing_event = NULL WHERE testing_event > :demo_events;

UPDATE demo_tagging
SET stable_event = CASE
    WHEN state = 1 AND NOT rawhide AND testing_event IS NOT NULL AND r_stable < 0.88
         AND testing_at + interval '3 days' + r_stable_delay * interval '11 days' < :'demo_now'::timestamptz
        THEN greatest(pg_temp.event_at(testing_at + interval '3 days' + r_stable_delay * interval '11 days'),
                      testing_event + 1)
END;
UPDATE demo_tagging SET stable_event = NULL WHERE stable_event > :demo_events;

INSERT INTO tag_listing (build_id, tag_id, create_event, revoke_event, creator_id, revoker_id, active)
SELECT g.build_id, t.id, g.candidate_event, g.testing_event, g.owner,
       CASE WHEN g.testing_event IS NOT NULL THEN CASE WHEN g.state = 2 THEN 1 ELSE 3 END END,
       CASE WHEN g.testing_event IS NULL THEN TRUE END
FROM demo_tagging AS g
JOIN demo_tag AS t ON t.name = g.dist || '-updates-candidate'
UNION ALL
SELECT g.build_id, t.id, g.testing_event, g.stable_event, 3,
       CASE WHEN g.stable_event IS NOT NULL THEN 3 END,
       CASE WHEN g.stable_event IS NULL THEN TRUE END
FROM demo_tagging AS g
JOIN demo_tag AS t
    ON t.name = CASE WHEN g.rawhide THEN g.dist ELSE g.dist || '-updates-testing' END
WHERE g.state = 1 AND g.testing_event IS NOT NULL
UNION ALL
SELECT g.build_id, t.id, g.stable_event, NULL, 3, NULL, TRUE
FROM demo_tagging AS g
JOIN demo_tag AS t ON t.name = g.dist || '-updates'
WHERE g.stable_event IS NOT NULL;

-- One in ten recent builds was also tagged into the side tag of its release that was
-- open at the time. The listing ended when the side tag was merged or deleted.
INSERT INTO tag_listing (build_id, tag_id, create_event, revoke_event, creator_id, revoker_id, active)
SELECT build_id, tag_id, created, revoked, owner,
       CASE WHEN revoked IS NOT NULL THEN owner END,
       CASE WHEN revoked IS NULL THEN TRUE END
FROM (
    SELECT g.build_id, side.id AS tag_id, g.owner,
           pg_temp.event_at(g.completion_time + interval '30 seconds') AS created,
           CASE WHEN least(side.deleted_at, g.completion_time + interval '1 hour'
                                             + g.r_side_delay * interval '3 days') < :'demo_now'::timestamptz
                THEN greatest(pg_temp.event_at(least(side.deleted_at, g.completion_time + interval '1 hour'
                                                                       + g.r_side_delay * interval '3 days')),
                              pg_temp.event_at(g.completion_time + interval '30 seconds') + 1)
           END AS revoked
    FROM demo_tagging AS g
    CROSS JOIN LATERAL (
        SELECT t.id, t.deleted_at
        FROM demo_tag AS t
        WHERE t.side AND t.dist = g.dist
          AND t.created_at < g.completion_time - interval '1 minute'
          AND (t.deleted_at IS NULL OR t.deleted_at > g.completion_time + interval '1 hour')
        ORDER BY t.created_at DESC
        LIMIT 1) AS side
    WHERE g.origin = 'task' AND g.state = 1 AND g.r_side < 0.1) AS s
WHERE revoked IS NULL OR revoked <= :demo_events;

-- Host state from the tasks -------------------------------------------------------------
-- kojid reports the summed weight of its open tasks that are not waiting on subtasks. It
-- reports ready unless the host is disabled, over capacity, runs maxjobs tasks, or fails
-- a check the database cannot show ("usable" covers those). A stale host keeps whatever it
-- reported last.

UPDATE host AS h
SET task_load = coalesce(l.task_load, 0),
    ready = CASE
        WHEN s.live THEN s.usable AND coalesce(l.task_load, 0) <= s.capacity
                         AND coalesce(l.jobs, 0) < s.maxjobs
        ELSE s.stale_ready
    END
FROM demo_host_state AS s
LEFT JOIN (SELECT host_id,
                  sum(weight) FILTER (WHERE state = 1 AND waiting IS NOT TRUE) AS task_load,
                  count(*) FILTER (WHERE state = 1) AS jobs
           FROM task
           WHERE state IN (1, 4)
           GROUP BY host_id) AS l ON l.host_id = s.id
WHERE h.id = s.id;

-- Each kojid that ever ran has one exclusive session, touched on every call, and has
-- reported its limits to the hub scheduler.
INSERT INTO sessions (user_id, expired, key, authtype, hostip, callnum, start_time,
                      update_time, exclusive)
SELECT s.user_id, FALSE, md5('session' || s.id), 2,
       '10.16.' || (s.id / 250) || '.' || (s.id % 250 + 1), 1000 + s.id * 37 % 50000,
       s.update_time - interval '3 days', s.update_time, TRUE
FROM demo_host_state AS s
WHERE s.update_time IS NOT NULL
ORDER BY s.id;

INSERT INTO scheduler_host_data (host_id, data)
SELECT s.id, jsonb_build_object('maxjobs', s.maxjobs, 'methods', to_jsonb(ARRAY[
           'build', 'buildArch', 'buildSRPMFromSCM', 'tagBuild', 'newRepo', 'createrepo',
           'buildNotification', 'tagNotification', 'waitrepo', 'runroot', 'image', 'createImage',
           'livemedia', 'createLiveMedia', 'distRepo', 'createdistrepo', 'buildContainer']))
FROM demo_host_state AS s
WHERE s.update_time IS NOT NULL
ORDER BY s.id;

-- Sequences continue after the generated ids, so later inserts (the activity script, or
-- get_event()) do not collide.
SELECT format('SELECT setval(pg_get_serial_sequence(%L, %L), greatest(1, (SELECT max(id) FROM %I)))',
              table_name, 'id', table_name)
FROM (VALUES ('events'), ('users'), ('channels'), ('host'), ('task'), ('package'), ('build'),
             ('tag'), ('build_target'), ('sessions')) AS t (table_name)
\gexec

SELECT definition FROM demo_index
\gexec
SELECT format('ALTER TABLE %s ADD CONSTRAINT %I %s', table_name, name, definition) FROM demo_foreign_key
\gexec

\o
