-- Fills the small and medium tables after prepare.sql: events, users, channels, builders,
-- tags with their configuration, inheritance and package lists, build targets and
-- packages. Builds, tag listings and tasks are in builds.sql and tasks.sql.
\set ON_ERROR_STOP on
\o /dev/null

SELECT (SELECT value FROM bench_load.size WHERE name = 'hosts') AS hosts,
       (SELECT value FROM bench_load.size WHERE name = 'tags') AS tags,
       (SELECT value FROM bench_load.size WHERE name = 'packages') AS packages,
       (SELECT count(*) FROM bench_load.dist) AS dists,
       (SELECT count(*) FROM bench_load.dist WHERE family = 'fedora') AS fedoras,
       greatest(50, (SELECT value FROM bench_load.size WHERE name = 'packages') / 20) AS packagers
\gset

INSERT INTO events (id, time)
SELECT i, c.history_start + (i - 1) * extract(epoch FROM c.loaded_at - c.history_start)
                               / (c.events - 1) * interval '1 second'
FROM bench_load.clock AS c, generate_series(1, c.events) AS i;

-- Users ----------------------------------------------------------------------------------
-- 1 to 4 are service accounts, then the packagers, then one user per builder (usertype 1),
-- as Koji creates for each host.

INSERT INTO users (id, name, status, usertype) VALUES
    (1, 'kojiadmin', 0, 0), (2, 'kojira', 0, 0), (3, 'bodhi', 0, 0), (4, 'releng', 0, 0);

INSERT INTO users (id, name, status, usertype)
SELECT 4 + i, 'packager' || i, CASE WHEN i % 53 = 0 THEN 1 ELSE 0 END, 0
FROM generate_series(1, :packagers) AS i;

-- Channels and builders ---------------------------------------------------------------------
-- Koji's eight default channels come with the schema; compose and container are added.
-- Half of the builders are x86_64 virtual machines, a quarter aarch64, the rest ppc64le,
-- s390x and x86_64 hardware. 7 % are disabled; every builder that runs polled within the
-- last 15 s.

INSERT INTO channels (name) VALUES ('compose'), ('container');

CREATE TABLE bench_load.host AS
SELECT h AS id, kind, 4 + :packagers + h AS user_id,
       format('%s-%s.bench.example.org', kind, lpad(h::text, 4, '0')) AS name,
       CASE kind WHEN 'buildvm-a64' THEN 'aarch64' WHEN 'buildvm-ppc64le' THEN 'ppc64le'
                 WHEN 'buildvm-s390x' THEN 's390x' ELSE 'x86_64 i686' END AS arches,
       CASE kind WHEN 'buildhw-x86' THEN 16 WHEN 'buildvm-s390x' THEN 4 ELSE 8 END AS capacity,
       bench_load.uniform(h, 1) >= 0.07 AS enabled
FROM (SELECT h, CASE
                    WHEN h % 20 < 10 THEN 'buildvm-x86'
                    WHEN h % 20 < 15 THEN 'buildvm-a64'
                    WHEN h % 20 < 17 THEN 'buildvm-ppc64le'
                    WHEN h % 20 < 19 THEN 'buildvm-s390x'
                    ELSE 'buildhw-x86'
                END AS kind
      FROM generate_series(1, :hosts) AS h) AS k;

INSERT INTO users (id, name, status, usertype)
SELECT user_id, name, 0, 1 FROM bench_load.host ORDER BY id;

INSERT INTO host (id, user_id, name, update_time, task_load, ready)
SELECT id, user_id, name, now() - bench_load.uniform(id, 2) * interval '15 seconds',
       0, enabled AND bench_load.uniform(id, 3) < 0.8
FROM bench_load.host;

-- A disabled builder keeps the revoked row of its enabled days.
INSERT INTO host_config (host_id, arches, capacity, description, enabled, create_event,
                         revoke_event, creator_id, revoker_id, active)
SELECT id, arches, capacity, 'benchmark builder', TRUE, 1, 2, 1, 1, NULL
FROM bench_load.host WHERE NOT enabled
UNION ALL
SELECT id, arches, capacity, 'benchmark builder', enabled, CASE WHEN enabled THEN 1 ELSE 2 END,
       NULL, 1, NULL, TRUE
FROM bench_load.host;

INSERT INTO host_channels (host_id, channel_id, create_event, creator_id)
SELECT h.id, c.id, 1, 1
FROM bench_load.host AS h
JOIN channels AS c ON c.name = 'default'
   OR (c.name = 'createrepo' AND h.kind = 'buildvm-x86' AND h.id % 4 = 0)
   OR (c.name = 'compose' AND (h.kind = 'buildhw-x86' OR h.id % 9 = 0))
   OR (c.name = 'container' AND h.id % 7 = 1)
   OR (c.name IN ('image', 'livemedia', 'livecd') AND h.kind = 'buildhw-x86');

-- Tags ------------------------------------------------------------------------------------
-- Release d owns tag ids 12 (d - 1) + 1 to 12 d, one per suffix. The remaining ids are side
-- tags, created evenly over the history on the rawhide of their time; 30 % were deleted,
-- which keeps their tag row and revokes their configuration.

CREATE TABLE bench_load.tag AS
SELECT (d.idx - 1) * 12 + s.position + 1 AS id, d.name || s.suffix AS name, d.idx AS dist_idx,
       s.position AS suffix_position, FALSE AS side, c.history_start AS created_at,
       NULL::timestamptz AS deleted_at
FROM bench_load.dist AS d, bench_load.suffix AS s, bench_load.clock AS c;

INSERT INTO bench_load.tag
SELECT id, d.name || '-build-side-' || id, d.idx, NULL, TRUE, created_at,
       CASE WHEN bench_load.uniform(id, 4) < 0.3 THEN created_at + interval '20 days' END
FROM (SELECT 12 * :dists + k AS id,
             c.history_start + (k - 0.5) / greatest(1, :tags - 12 * :dists)
                 * (c.loaded_at - c.history_start) AS created_at,
             c.history_start, c.loaded_at
      FROM bench_load.clock AS c, generate_series(1, greatest(0, :tags - 12 * :dists)) AS k) AS t
JOIN bench_load.dist AS d
  ON d.family = 'fedora'
 AND d.age = greatest(0, :fedoras - 1 - floor(extract(epoch FROM t.created_at - t.history_start)
                                            / (180 * 86400))::integer);
UPDATE bench_load.tag SET deleted_at = NULL WHERE deleted_at > now();
CREATE UNIQUE INDEX ON bench_load.tag (id);
ANALYZE bench_load.tag;

INSERT INTO tag (id, name) SELECT id, name FROM bench_load.tag ORDER BY id;

-- Releases older than the newest three Fedoras are locked: a revoked unlocked row and an
-- active locked one.
INSERT INTO tag_config (tag_id, arches, locked, create_event, revoke_event, creator_id,
                        revoker_id, active)
SELECT t.id, CASE WHEN t.side OR t.suffix_position IN (1, 9, 10) THEN d.arches END, FALSE,
       bench_load.event_at(t.created_at),
       CASE WHEN t.deleted_at IS NOT NULL THEN bench_load.event_at(t.deleted_at)
            WHEN NOT t.side AND d.family = 'fedora' AND d.age >= 3 THEN bench_load.event_at(t.created_at) + 1
       END,
       1,
       CASE WHEN t.deleted_at IS NOT NULL OR (NOT t.side AND d.family = 'fedora' AND d.age >= 3) THEN 1 END,
       CASE WHEN t.deleted_at IS NULL AND (t.side OR d.family <> 'fedora' OR d.age < 3) THEN TRUE END
FROM bench_load.tag AS t
JOIN bench_load.dist AS d ON d.idx = t.dist_idx
UNION ALL
SELECT t.id, CASE WHEN t.suffix_position IN (1, 9, 10) THEN d.arches END, TRUE,
       bench_load.event_at(t.created_at) + 1, NULL, 1, NULL, TRUE
FROM bench_load.tag AS t
JOIN bench_load.dist AS d ON d.idx = t.dist_idx
WHERE NOT t.side AND d.family = 'fedora' AND d.age >= 3;

-- Inheritance inside a release (child suffix, parent suffix): the updates tags chain down to
-- the release tag, and the build tag reaches it through -override. Side tags inherit their
-- release's build tag; a deleted side tag's link is revoked with it.
INSERT INTO tag_inheritance (tag_id, parent_id, priority, maxdepth, intransitive, pkg_filter,
                             create_event, revoke_event, creator_id, revoker_id, active)
SELECT (d.idx - 1) * 12 + l.child + 1, (d.idx - 1) * 12 + l.parent + 1, 0, l.maxdepth,
       l.intransitive, l.pkg_filter, 1, NULL::integer, 1, NULL::integer, TRUE
FROM bench_load.dist AS d
CROSS JOIN (VALUES (3, 0, NULL::integer, FALSE, NULL::text), (4, 3, NULL, FALSE, NULL),
                   (5, 3, NULL, FALSE, NULL), (6, 5, NULL, FALSE, NULL),
                   (7, 3, NULL, FALSE, NULL), (8, 4, NULL, FALSE, NULL),
                   (2, 3, NULL, FALSE, NULL), (1, 2, NULL, FALSE, NULL),
                   (9, 1, NULL, TRUE, NULL), (10, 1, 3, FALSE, NULL),
                   (11, 3, NULL, FALSE, '(python|perl|golang)-'))
    AS l (child, parent, maxdepth, intransitive, pkg_filter)
UNION ALL
SELECT t.id, (t.dist_idx - 1) * 12 + 2, 0, NULL, FALSE, NULL,
       bench_load.event_at(t.created_at),
       CASE WHEN t.deleted_at IS NOT NULL THEN bench_load.event_at(t.deleted_at) END, 1,
       CASE WHEN t.deleted_at IS NOT NULL THEN 1 END,
       CASE WHEN t.deleted_at IS NULL THEN TRUE END
FROM bench_load.tag AS t
WHERE t.side;

-- Build targets: three per release (ids 3 (d - 1) + 1 to 3 d), rawhide, then one per side
-- tag, removed with it.
INSERT INTO build_target (id, name)
SELECT 3 * (d.idx - 1) + v.n, d.name || v.suffix
FROM bench_load.dist AS d
CROSS JOIN (VALUES (1, ''), (2, '-candidate'), (3, '-container-candidate')) AS v (n, suffix)
UNION ALL
SELECT 3 * :dists + 1, 'rawhide'
UNION ALL
SELECT 3 * :dists + 1 + (t.id - 12 * :dists), t.name
FROM bench_load.tag AS t
WHERE t.side;

INSERT INTO build_target_config (build_target_id, build_tag, dest_tag, create_event,
                                 revoke_event, creator_id, revoker_id, active)
SELECT 3 * (d.idx - 1) + v.n, (d.idx - 1) * 12 + v.build_suffix + 1, (d.idx - 1) * 12 + 5,
       1, NULL::integer, 1, NULL::integer, TRUE
FROM bench_load.dist AS d
CROSS JOIN (VALUES (1, 1), (2, 1), (3, 9)) AS v (n, build_suffix)
UNION ALL
SELECT 3 * :dists + 1, (d.idx - 1) * 12 + 2, (d.idx - 1) * 12 + 5, 1, NULL, 1, NULL, TRUE
FROM bench_load.dist AS d
WHERE d.family = 'fedora' AND d.age = 0
UNION ALL
SELECT 3 * :dists + 1 + (t.id - 12 * :dists), t.id, t.id, bench_load.event_at(t.created_at),
       CASE WHEN t.deleted_at IS NOT NULL THEN bench_load.event_at(t.deleted_at) END, 1,
       CASE WHEN t.deleted_at IS NOT NULL THEN 1 END,
       CASE WHEN t.deleted_at IS NULL THEN TRUE END
FROM bench_load.tag AS t
WHERE t.side;

-- Packages and package lists --------------------------------------------------------------
-- Each release tag lists packages: a Fedora release the packages that existed when it
-- branched (70 % of today's for the oldest, all for rawhide), an EPEL release a subset.
-- 3 % of the listings are blocked (retired), which leaves a revoked unblocked row and an
-- active blocked one. Every listing has an active owner row.

INSERT INTO package (id, name)
SELECT i, bench_load.package_name(i) FROM generate_series(1, :packages) AS i;

CREATE TABLE bench_load.listing AS
SELECT p AS package_id, (d.idx - 1) * 12 + 1 AS tag_id,
       bench_load.uniform(p * 64 + d.idx, 5) < 0.03 AS blocked,
       5 + (p * 7 + d.idx) % :packagers AS owner
FROM bench_load.dist AS d
CROSS JOIN generate_series(1, :packages) AS p
WHERE CASE d.name
          WHEN 'epel8' THEN p % 4 = 0
          WHEN 'epel9' THEN p % 3 = 0
          WHEN 'epel10' THEN p % 5 = 0
          ELSE p <= :packages * (0.7 + 0.3 * (:fedoras - d.age) / :fedoras)
      END;

INSERT INTO tag_packages (package_id, tag_id, blocked, create_event, revoke_event, creator_id,
                          revoker_id, active)
SELECT package_id, tag_id, FALSE, 1, CASE WHEN blocked THEN 2 END, 1,
       CASE WHEN blocked THEN 1 END, CASE WHEN NOT blocked THEN TRUE END
FROM bench_load.listing
UNION ALL
SELECT package_id, tag_id, TRUE, 2, NULL, 1, NULL, TRUE
FROM bench_load.listing
WHERE blocked;

INSERT INTO tag_package_owners (package_id, tag_id, owner, create_event, creator_id, active)
SELECT package_id, tag_id, owner, 1, 1, TRUE FROM bench_load.listing;

\o
