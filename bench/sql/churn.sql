-- One step of simulated Koji activity on a benchmark database: :arrivals new tasks arrive
-- FREE, and as many tasks move on in each stage, oldest first (FREE to ASSIGNED, ASSIGNED to
-- OPEN, OPEN to finished), so the number of active tasks stays constant and tasks finish at
-- the rate they arrive. A build task that closes creates its build and tags it into its
-- target's destination tag. A fifteenth of the builders poll (builders poll every 15 s).
-- New tasks are top-level tasks: no parents, so no labels. bench/run.sh feeds this file to
-- one psql session once a second, with :arrivals and :step set.
\o /dev/null

-- Each step picks the oldest tasks of a state from a subquery fenced with OFFSET 0, so
-- that PostgreSQL finds them through task_by_state. Without the fence it walks the primary
-- key from the oldest task, which at 20 million tasks takes seconds, because the active
-- tasks are the newest.

WITH moved AS (
    SELECT id, CASE WHEN r < 0.90 THEN 2 WHEN r < 0.96 THEN 5 ELSE 3 END AS state
    FROM (SELECT id, random() AS r FROM (SELECT id FROM task WHERE state = 1 OFFSET 0) AS a
          ORDER BY id LIMIT :arrivals) AS o),
finished AS (
    UPDATE task AS t
    SET state = m.state, completion_time = now(),
        waiting = CASE WHEN t.waiting IS NOT NULL THEN FALSE END,
        awaited = CASE WHEN t.awaited IS NOT NULL THEN FALSE END
    FROM moved AS m
    WHERE t.id = m.id
    RETURNING t.id, t.method, t.state, t.request, t.owner),
new_build AS (
    INSERT INTO build (volume_id, pkg_id, version, release, start_time, completion_time, state,
                       task_id, owner)
    SELECT 0, 1 + floor(random() * (SELECT max(id) FROM package))::integer, 'churn.' || f.id,
           '1.bench', now() - interval '10 minutes', now(), 1, f.id, f.owner
    FROM finished AS f
    WHERE f.method = 'build' AND f.state = 2
    RETURNING id, task_id, owner)
INSERT INTO tag_listing (build_id, tag_id, creator_id)
SELECT b.id, c.dest_tag, b.owner
FROM new_build AS b
JOIN finished AS f ON f.id = b.task_id
JOIN build_target AS bt
  ON bt.name = substring(f.request FROM '</param><param><value><string>([^<]+)</string>')
JOIN build_target_config AS c ON c.build_target_id = bt.id AND c.active IS TRUE;

UPDATE task SET state = 1, start_time = now()
WHERE id IN (SELECT id FROM (SELECT id FROM task WHERE state = 4 OFFSET 0) AS a
             ORDER BY id LIMIT :arrivals);

UPDATE task SET state = 4, host_id = 1 + (id * 31) % (SELECT max(id) FROM host)
WHERE id IN (SELECT id FROM (SELECT id FROM task WHERE state = 0 OFFSET 0) AS a
             ORDER BY id LIMIT :arrivals);

-- New tasks for a random release target, with requests shaped as the hub stores them.
INSERT INTO task (state, create_time, channel_id, owner, method, request, arch, priority)
SELECT 0, now(), ch.id, 5 + floor(a.r_owner * 50)::integer, a.method,
       '<?xml version=''1.0''?>' || chr(10) || '<methodCall>' || chr(10)
           || '<methodName>' || a.method || '</methodName>' || chr(10) || '<params>' || chr(10)
           || CASE a.method
                  WHEN 'build' THEN '<param><value><string>git+https://src.bench.example.org/rpms/'
                      || p.name || '.git#' || md5(random()::text) || '</string></value></param>'
                      || '<param><value><string>' || t.target || '</string></value></param>'
                      || '<param><value><struct></struct></value></param>'
                  WHEN 'buildSRPMFromSCM' THEN '<param><value><string>git+https://src.bench.example.org/rpms/'
                      || p.name || '.git#' || md5(random()::text) || '</string></value></param>'
                      || '<param><value><string>' || t.build_tag || '</string></value></param>'
                  WHEN 'buildArch' THEN '<param><value><string>tasks/' || p.name || '-1.0-1.src.rpm'
                      || '</string></value></param><param><value><int>' || t.build_tag_id
                      || '</int></value></param><param><value><string>x86_64</string></value></param>'
                  WHEN 'tagBuild' THEN '<param><value><int>' || t.dest_tag_id || '</int></value></param>'
                  WHEN 'newRepo' THEN '<param><value><string>' || t.build_tag || '</string></value></param>'
                  ELSE '<param><value><int>' || floor(a.r_owner * 100000)::integer || '</int></value></param>'
              END
           || '</params>' || chr(10) || '</methodCall>',
       'noarch', 20
FROM (SELECT n, random() AS r_method, random() AS r_owner, random() AS r_target,
             random() AS r_package
      FROM generate_series(1, :arrivals) AS n) AS r
CROSS JOIN LATERAL (
    SELECT r.*, CASE WHEN r.r_method < 0.35 THEN 'buildArch'
                     WHEN r.r_method < 0.43 THEN 'build'
                     WHEN r.r_method < 0.51 THEN 'buildSRPMFromSCM'
                     WHEN r.r_method < 0.63 THEN 'tagBuild'
                     WHEN r.r_method < 0.67 THEN 'newRepo'
                     WHEN r.r_method < 0.80 THEN 'createrepo'
                     WHEN r.r_method < 0.90 THEN 'buildNotification'
                     ELSE 'tagNotification' END AS method) AS a
JOIN channels AS ch
  ON ch.name = CASE WHEN a.method IN ('newRepo', 'createrepo') THEN 'createrepo' ELSE 'default' END
CROSS JOIN LATERAL (
    SELECT pk.name FROM package AS pk
    WHERE pk.id = 1 + floor(a.r_package * (SELECT max(id) FROM package))::integer) AS p
CROSS JOIN LATERAL (
    SELECT bt.name AS target, bc.build_tag AS build_tag_id, bc.dest_tag AS dest_tag_id,
           build_tag.name AS build_tag
    FROM build_target AS bt
    JOIN build_target_config AS bc ON bc.build_target_id = bt.id AND bc.active IS TRUE
    JOIN tag AS build_tag ON build_tag.id = bc.build_tag
    WHERE bt.name ~ '^(f|epel)[0-9]+$'
    ORDER BY bt.id
    OFFSET floor(a.r_target * (SELECT count(*) FROM build_target WHERE name ~ '^(f|epel)[0-9]+$'))::integer
    LIMIT 1) AS t;

UPDATE host SET update_time = now() WHERE id % 15 = :step % 15;

\o
