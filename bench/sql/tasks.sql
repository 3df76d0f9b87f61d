-- Fills task after catalog.sql. Tasks come in families (a top-level task and the subtasks
-- it spawns) of fixed shapes, created evenly over the last span_days days, with the request
-- of each task an XML-RPC call as the hub stores it. The newest `active` tasks are FREE,
-- ASSIGNED or OPEN; all older ones finished. The first 0.2 % have base64 requests, as very
-- old Koji tasks do.
\set ON_ERROR_STOP on
\o /dev/null

SELECT (SELECT value FROM bench_load.size WHERE name = 'tasks') AS tasks,
       (SELECT value FROM bench_load.size WHERE name = 'active') AS active,
       (SELECT value FROM bench_load.size WHERE name = 'hosts') AS hosts,
       (SELECT count(*) FROM bench_load.dist) AS dists,
       (SELECT count(*) FROM bench_load.dist WHERE family = 'fedora') AS fedoras,
       greatest(50, (SELECT value FROM bench_load.size WHERE name = 'packages') / 20) AS packagers,
       (SELECT value FROM bench_load.size WHERE name = 'packages') AS packages,
       (SELECT count(*) FROM bench_load.tag WHERE side) AS side_tags
\gset

SET work_mem = '256MB';

-- The shape of each kind of family: one row per task, slot 0 being the top-level task.
CREATE TABLE bench_load.family_slot (kind text, slot integer, method text, arch text,
                                     label text, channel text);
INSERT INTO bench_load.family_slot
SELECT 'build', 0, 'build', 'noarch', NULL, 'default'
UNION ALL SELECT 'build', 1, 'buildSRPMFromSCM', 'noarch', 'srpm', 'default'
UNION ALL SELECT 'build', 1 + n, 'buildArch', arch, arch, 'default'
    FROM unnest(ARRAY['x86_64', 'i686', 'aarch64', 'ppc64le', 's390x']) WITH ORDINALITY AS a (arch, n)
UNION ALL SELECT 'build', 7, 'tagBuild', 'noarch', 'tag', 'default'
UNION ALL SELECT 'build_noarch', 0, 'build', 'noarch', NULL, 'default'
UNION ALL SELECT 'build_noarch', 1, 'buildSRPMFromSCM', 'noarch', 'srpm', 'default'
UNION ALL SELECT 'build_noarch', 2, 'buildArch', 'noarch', 'noarch', 'default'
UNION ALL SELECT 'build_noarch', 3, 'tagBuild', 'noarch', 'tag', 'default'
UNION ALL SELECT 'newRepo', 0, 'newRepo', 'noarch', NULL, 'createrepo'
UNION ALL SELECT 'newRepo', n::integer, 'createrepo', 'noarch', arch, 'createrepo'
    FROM unnest(ARRAY['x86_64', 'i686', 'aarch64', 'ppc64le', 's390x']) WITH ORDINALITY AS a (arch, n)
UNION ALL SELECT 'distRepo', 0, 'distRepo', 'noarch', NULL, 'createrepo'
UNION ALL SELECT 'distRepo', n::integer, 'createdistrepo', 'noarch', arch, 'createrepo'
    FROM unnest(ARRAY['x86_64', 'aarch64', 'ppc64le', 's390x']) WITH ORDINALITY AS a (arch, n)
UNION ALL SELECT 'image', 0, 'image', 'noarch', NULL, 'image'
UNION ALL SELECT 'image', n::integer, 'createImage', arch, arch, 'image'
    FROM unnest(ARRAY['x86_64', 'aarch64']) WITH ORDINALITY AS a (arch, n)
UNION ALL SELECT 'livemedia', 0, 'livemedia', 'noarch', NULL, 'livemedia'
UNION ALL SELECT 'livemedia', 1, 'createLiveMedia', 'x86_64', 'x86_64', 'livemedia'
UNION ALL SELECT kind, 0, kind, CASE WHEN kind = 'runroot' THEN 'x86_64' ELSE 'noarch' END, NULL,
                 CASE kind WHEN 'runroot' THEN 'compose' WHEN 'buildContainer' THEN 'container'
                           ELSE 'default' END
    FROM unnest(ARRAY['buildNotification', 'tagNotification', 'tagBuild', 'waitrepo', 'runroot',
                      'buildContainer']) AS k (kind);

-- Family kinds in these shares average 3.2 tasks a family; the families past the
-- requested number of tasks are cut off below.
SELECT ceil(:tasks / 3.0)::integer + 10 AS families \gset

-- Every family's kind, time and release, and the id of its first task: the ids of a
-- family's tasks are consecutive and follow the family order.
CREATE UNLOGGED TABLE bench_load.family AS
SELECT f.*, size.tasks AS shape_tasks,
       (sum(size.tasks) OVER (ORDER BY f.id) - size.tasks + 1)::bigint AS first_id
FROM (
    SELECT k.*,
           d.idx AS dist_idx,
           CASE WHEN k.kind IN ('build', 'build_noarch') AND k.u_side < 0.04 AND :side_tags > 0
                THEN 12 * :dists + greatest(1, least(:side_tags, k.side_newest - floor(k.u_side / 0.04 * 25 * k.side_per_day)::integer))
           END AS side_tag_id
    FROM (
        SELECT i AS id, t.created,
               CASE
                   WHEN u_kind < 0.20 THEN 'build'
                   WHEN u_kind < 0.28 THEN 'build_noarch'
                   WHEN u_kind < 0.38 THEN 'newRepo'
                   WHEN u_kind < 0.58 THEN 'buildNotification'
                   WHEN u_kind < 0.78 THEN 'tagNotification'
                   WHEN u_kind < 0.90 THEN 'tagBuild'
                   WHEN u_kind < 0.93 THEN 'waitrepo'
                   WHEN u_kind < 0.96 THEN 'runroot'
                   WHEN u_kind < 0.975 THEN 'image'
                   WHEN u_kind < 0.985 THEN 'livemedia'
                   WHEN u_kind < 0.99 THEN 'distRepo'
                   ELSE 'buildContainer'
               END AS kind,
               bench_load.uniform(i, 22) AS u_dist,
               bench_load.uniform(i, 23) AS u_side,
               bench_load.uniform(i, 24) AS u_outcome,
               1 + floor(:packages * power(bench_load.uniform(i, 25), 1.6))::integer AS pkg_id,
               greatest(0, :fedoras - 1 - floor(extract(epoch FROM t.created - c.history_start)
                                                / (180 * 86400))::integer) AS rawhide_age,
               -- Side tags are created evenly over the history; the family uses one created
               -- within the 25 days before it.
               floor(extract(epoch FROM t.created - c.history_start)
                     / extract(epoch FROM c.loaded_at - c.history_start) * :side_tags)::integer AS side_newest,
               :side_tags * 86400.0 / extract(epoch FROM c.loaded_at - c.history_start) AS side_per_day
        FROM bench_load.clock AS c
        CROSS JOIN generate_series(1, :families) AS i
        CROSS JOIN LATERAL (SELECT bench_load.uniform(i, 21) AS u_kind) AS u
        CROSS JOIN LATERAL (
            SELECT c.loaded_at - (:families - i + 0.5) / :families * c.task_span AS created) AS t
    ) AS k
    JOIN bench_load.dist AS d
      ON CASE
             WHEN k.u_dist < 0.8 THEN d.family = 'fedora'
                 AND d.age = least(:fedoras - 1, k.rawhide_age + CASE WHEN k.u_dist < 0.55 THEN 0
                                                                      WHEN k.u_dist < 0.72 THEN 1
                                                                      ELSE 2 END)
             ELSE d.idx = :fedoras + 1 + floor((k.u_dist - 0.8) / 0.2 * 3)::integer
         END
) AS f
JOIN (SELECT kind, count(*) AS tasks FROM bench_load.family_slot GROUP BY kind) AS size
  ON size.kind = f.kind;

BEGIN;
-- Truncating in the loading transaction lets PostgreSQL skip the WAL for the rows
-- (wal_level = minimal).
TRUNCATE task;

INSERT INTO task (id, state, create_time, start_time, completion_time, channel_id, host_id,
                  parent, label, waiting, awaited, owner, method, request, arch, priority,
                  weight)
SELECT id, state, create_time,
       CASE WHEN state NOT IN (0, 4) THEN create_time + interval '10 seconds' END,
       CASE WHEN state IN (2, 3, 5) THEN create_time + (40 + (id % 53) * 20) * interval '1 second' END,
       channel_id,
       CASE WHEN state <> 0 THEN 1 + (id * 31) % :hosts END,
       parent, label,
       CASE WHEN slot = 0 AND shape_tasks > 1 THEN state = 1 END,
       CASE WHEN slot > 0 THEN state IN (0, 1, 4) END,
       owner, method, request, arch, priority,
       CASE WHEN state IN (0, 4) THEN 1.0
            WHEN method = 'buildArch' THEN 2.5
            WHEN method IN ('createrepo', 'createdistrepo', 'createLiveMedia') THEN 1.5
            WHEN method IN ('createImage', 'runroot') THEN 2.0
            WHEN method = 'buildSRPMFromSCM' THEN 1.0
            ELSE 0.2
       END
FROM (
    SELECT f.first_id + s.slot AS id, s.slot, s.method, s.arch, s.label, ch.id AS channel_id,
           f.created + s.slot * interval '2 seconds' AS create_time,
           f.shape_tasks,
           CASE WHEN s.slot > 0 THEN f.first_id END AS parent,
           CASE
               WHEN f.kind IN ('newRepo', 'distRepo') THEN 2
               WHEN f.kind = 'tagBuild' THEN 3
               WHEN f.kind IN ('runroot', 'image', 'livemedia') THEN 4
               ELSE 5 + f.pkg_id % :packagers
           END AS owner,
           CASE
               WHEN f.kind IN ('newRepo', 'distRepo') THEN 15
               WHEN f.kind = 'tagBuild' THEN 10
               ELSE 20
           END - CASE WHEN s.slot > 0 THEN 1 ELSE 0 END AS priority,
           CASE
               -- The newest tasks are still active: parents OPEN, the others FREE,
               -- ASSIGNED or OPEN.
               WHEN f.first_id + s.slot > :tasks - :active THEN CASE
                   WHEN s.slot = 0 AND f.shape_tasks > 1 THEN 1
                   WHEN bench_load.uniform(f.first_id + s.slot, 26) < 0.4 THEN 0
                   WHEN bench_load.uniform(f.first_id + s.slot, 26) < 0.6 THEN 4
                   ELSE 1 END
               WHEN f.u_outcome < 0.90 THEN 2
               WHEN f.u_outcome < 0.96 THEN CASE WHEN s.slot IN (0, 1) THEN 5 ELSE 3 END
               ELSE 3
           END AS state,
           CASE
               WHEN f.first_id + s.slot <= :tasks / 500
                   THEN encode(convert_to(s.method || ' ' || f.id || ' ' || f.pkg_id, 'UTF8'), 'base64')
               ELSE bench_load.xml_call(s.method, r.params)
           END AS request
    FROM bench_load.family AS f
    JOIN bench_load.family_slot AS s ON s.kind = f.kind
    JOIN channels AS ch ON ch.name = s.channel
    JOIN bench_load.dist AS d ON d.idx = f.dist_idx
    LEFT JOIN bench_load.tag AS side ON side.id = f.side_tag_id
    CROSS JOIN LATERAL (
        SELECT coalesce(side.name, d.name) AS target,
               coalesce(side.name, d.name || '-build') AS build_tag,
               coalesce(side.id, (d.idx - 1) * 12 + 2) AS build_tag_id,
               coalesce(side.id, (d.idx - 1) * 12 + 5) AS dest_tag_id,
               bench_load.package_name(f.pkg_id) AS package,
               'git+https://src.bench.example.org/rpms/' || bench_load.package_name(f.pkg_id)
                   || '.git#' || md5(f.id::text) AS source) AS x
    CROSS JOIN LATERAL (
        SELECT CASE s.method
            WHEN 'build' THEN bench_load.xml_string(x.source) || bench_load.xml_string(x.target)
                || '<param><value><struct><member><name>scratch</name><value><boolean>'
                || CASE WHEN f.u_side > 0.7 THEN 1 ELSE 0 END
                || '</boolean></value></member></struct></value></param>'
            WHEN 'buildSRPMFromSCM' THEN bench_load.xml_string(x.source)
                || bench_load.xml_string(x.build_tag)
                || '<param><value><struct><member><name>repo_id</name><value><int>'
                || (f.id % 100000) || '</int></value></member></struct></value></param>'
            WHEN 'buildArch' THEN bench_load.xml_string('tasks/' || (f.first_id + 1) % 10000 || '/'
                                                        || f.first_id + 1 || '/' || x.package
                                                        || '-1.0-1.src.rpm')
                || bench_load.xml_int(x.build_tag_id) || bench_load.xml_string(s.arch)
                || '<param><value><boolean>1</boolean></value></param>'
                || '<param><value><struct><member><name>repo_id</name><value><int>'
                || (f.id % 100000) || '</int></value></member></struct></value></param>'
            WHEN 'tagBuild' THEN bench_load.xml_int(x.dest_tag_id) || bench_load.xml_int(f.id)
                || '<param><value><boolean>0</boolean></value></param>'
                || '<param><value><nil/></value></param>'
            -- From Koji 1.35 kojira passes the tag as a struct with id and name.
            WHEN 'newRepo' THEN CASE
                WHEN f.u_outcome < 0.5 THEN bench_load.xml_string(x.build_tag)
                ELSE '<param><value><struct><member><name>id</name><value><int>' || x.build_tag_id
                    || '</int></value></member><member><name>name</name><value><string>'
                    || x.build_tag || '</string></value></member></struct></value></param>'
                END
            WHEN 'waitrepo' THEN bench_load.xml_string(x.build_tag)
                || '<param><value><nil/></value></param>'
            WHEN 'createrepo' THEN bench_load.xml_int(f.id % 1000000) || bench_load.xml_string(s.arch)
                || '<param><value><nil/></value></param>'
            WHEN 'runroot' THEN bench_load.xml_string(x.build_tag) || bench_load.xml_string(s.arch)
                || bench_load.xml_string('pungi-make-ostree tree --repo=/mnt/koji/compose/ostree')
            WHEN 'tagNotification' THEN
                '<param><value><array><data><value><string>' || x.package
                || '-owner@bench.example.org</string></value></data></array></value></param>'
                || '<param><value><boolean>1</boolean></value></param>'
                || bench_load.xml_int(x.dest_tag_id) || '<param><value><nil/></value></param>'
                || bench_load.xml_int(f.id)
            WHEN 'buildNotification' THEN
                '<param><value><array><data><value><string>' || x.package
                || '-owner@bench.example.org</string></value></data></array></value></param>'
                || '<param><value><struct><member><name>id</name><value><int>' || f.id
                || '</int></value></member></struct></value></param>'
            ELSE bench_load.xml_string(x.target) || bench_load.xml_string(s.arch)
        END AS params) AS r
) AS t
WHERE id <= :tasks;
COMMIT;

\o
