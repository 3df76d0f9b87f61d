-- Fills build and tag_listing after catalog.sql. Builds are spread evenly over the history,
-- each in the release that was current at its time (or up to two releases older), and 20 %
-- in EPEL. A completed build moves through its release's tags (candidate, testing, updates;
-- rawhide builds go straight into the release tag), and many are also tagged into side
-- tags, so that tag_listing reaches the requested size.
\set ON_ERROR_STOP on
\o /dev/null

SELECT (SELECT value FROM bench_load.size WHERE name = 'builds') AS builds,
       (SELECT value FROM bench_load.size WHERE name = 'listings') AS listings,
       (SELECT value FROM bench_load.size WHERE name = 'packages') AS packages,
       greatest(1, (SELECT value FROM bench_load.size WHERE name = 'active') / 10) AS building,
       (SELECT count(*) FROM bench_load.dist) AS dists,
       (SELECT count(*) FROM bench_load.dist WHERE family = 'fedora') AS fedoras,
       greatest(50, (SELECT value FROM bench_load.size WHERE name = 'packages') / 20) AS packagers,
       (SELECT count(*) FROM bench_load.tag WHERE side) AS side_tags
\gset
-- About 92 % of the builds are COMPLETE or DELETED and get listings: two to three in their
-- release's tags, the rest in side tags.
SELECT greatest(0, :listings / (0.92 * :builds) - 2.7) AS side_listings_per_build \gset

SET work_mem = '256MB';

-- The plan of each build: time, release, package, state.
CREATE UNLOGGED TABLE bench_load.build AS
SELECT b.id, b.created, b.pkg_id, d.idx AS dist_idx, d.name AS dist, d.dist_tag,
       d.family = 'fedora' AND d.age = b.rawhide_age AS rawhide,
       CASE
           WHEN b.id > :builds - :building THEN 0
           WHEN b.u_state < 0.90 THEN 1
           WHEN b.u_state < 0.95 THEN 3
           WHEN b.u_state < 0.97 THEN 4
           ELSE 2
       END AS state
FROM (
    SELECT i AS id, t.created,
           1 + floor(:packages * power(bench_load.uniform(i, 11), 1.6))::integer AS pkg_id,
           bench_load.uniform(i, 12) AS u_state,
           bench_load.uniform(i, 13) AS u_dist,
           greatest(0, :fedoras - 1 - floor(extract(epoch FROM t.created - c.history_start)
                                            / (180 * 86400))::integer) AS rawhide_age
    FROM bench_load.clock AS c
    CROSS JOIN generate_series(1, :builds) AS i
    CROSS JOIN LATERAL (
        SELECT c.history_start + (i - 0.5) / :builds
                   * (c.loaded_at - interval '1 hour' - c.history_start) AS created) AS t) AS b
JOIN bench_load.dist AS d
  ON CASE
         WHEN b.u_dist < 0.8 THEN d.family = 'fedora'
             AND d.age = least(:fedoras - 1, b.rawhide_age + CASE WHEN b.u_dist < 0.55 THEN 0
                                                                  WHEN b.u_dist < 0.72 THEN 1
                                                                  ELSE 2 END)
         ELSE d.idx = :fedoras + 1 + floor((b.u_dist - 0.8) / 0.2 * 3)::integer
     END;

BEGIN;
-- Truncating in the loading transaction lets PostgreSQL skip the WAL for the rows
-- (wal_level = minimal).
TRUNCATE build, tag_listing;

INSERT INTO build (id, volume_id, pkg_id, version, release, draft, source, create_event,
                   start_time, completion_time, state, owner)
SELECT id, 0, pkg_id, (id / 1000) || '.' || (id % 1000), '1.' || dist_tag, FALSE,
       'git+https://src.bench.example.org/rpms/' || bench_load.package_name(pkg_id) || '.git#'
           || md5(id::text),
       bench_load.event_at(created), created,
       CASE WHEN state <> 0 THEN created + (300 + (id % 97) * 60) * interval '1 second' END,
       state, 5 + (id * 13) % :packagers
FROM bench_load.build;

-- Release tags of release d: 12 (d - 1) + 1 + suffix position; 0 is the release tag,
-- 3 -updates, 4 -updates-candidate, 5 -updates-testing. A move revokes the old listing one
-- day (candidate) or a week (testing) later. A DELETED build lost all its listings 30 days
-- after it was built. Side tags: listing j of build b goes to side tag
-- (7919 b + j) mod side_tags, so the listings of one build never share a tag; 60 % are
-- still active unless the side tag was deleted. Moves due in the last hour before the
-- loading time have not happened yet.
INSERT INTO tag_listing (build_id, tag_id, create_event, revoke_event, creator_id, revoker_id, active)
SELECT build_id, tag_id, bench_load.event_at(created),
       CASE WHEN revoked IS NOT NULL
            THEN greatest(bench_load.event_at(revoked), bench_load.event_at(created) + 1) END,
       creator,
       CASE WHEN revoked IS NOT NULL THEN creator END,
       CASE WHEN revoked IS NULL THEN TRUE END
FROM (
    SELECT build_id, tag_id, created, creator,
           CASE WHEN revoked < c.loaded_at - interval '1 hour' THEN revoked END AS revoked
    FROM bench_load.clock AS c
    CROSS JOIN LATERAL (
        SELECT b.id AS build_id, (b.dist_idx - 1) * 12 + 1 + s.suffix_position AS tag_id,
               b.created + s.start_after AS created,
               CASE WHEN b.state = 2 THEN b.created + interval '30 days'
                    ELSE b.created + s.end_after END AS revoked,
               5 + (b.id * 13) % :packagers AS creator
        FROM bench_load.build AS b
        JOIN (VALUES (FALSE, 4, interval '1 minute', interval '1 day'),
                     (FALSE, 5, interval '1 day', interval '8 days'),
                     (FALSE, 3, interval '8 days', NULL::interval),
                     (TRUE, 4, interval '1 minute', interval '1 day'),
                     (TRUE, 0, interval '1 day', NULL))
            AS s (rawhide, suffix_position, start_after, end_after)
          ON s.rawhide = b.rawhide AND b.created + s.start_after < c.loaded_at - interval '1 hour'
        WHERE b.state IN (1, 2)
        UNION ALL
        SELECT b.id, t.id, b.created + j * interval '1 hour',
               CASE WHEN b.state = 2 THEN b.created + interval '30 days'
                    WHEN t.deleted_at IS NOT NULL
                        THEN greatest(t.deleted_at, b.created + (j + 1) * interval '1 hour')
                    WHEN bench_load.uniform(b.id * 64 + j, 14) >= 0.6
                        THEN b.created + (j + 24) * interval '1 hour'
               END,
               5 + (b.id * 13) % :packagers
        FROM bench_load.build AS b
        CROSS JOIN LATERAL generate_series(
            1, least(:side_tags, 40, floor(bench_load.uniform(b.id, 15)
                                           * (2 * :side_listings_per_build + 1))::integer)) AS j
        JOIN bench_load.tag AS t ON t.id = 12 * :dists + 1 + (b.id::bigint * 7919 + j) % :side_tags
        WHERE b.state IN (1, 2)
          AND b.created + j * interval '1 hour' < c.loaded_at - interval '2 hours') AS step
) AS listing;
COMMIT;

\o
