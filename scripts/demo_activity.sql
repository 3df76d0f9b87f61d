-- One step of simulated Koji activity for the koji_exporter demo database, run every few
-- seconds by `scripts/demo_postgres.sh activity`. It acts as the hub, its scheduler and the
-- builders' kojid would: tasks arrive, get assigned, open, spawn subtasks and finish,
-- builds complete and get tagged, and running builders report in. It expects the data of
-- scripts/demo_data.sql and is not meant for a real Koji database.
--
-- Each statement is its own short transaction. No tasks arrive while the active tasks
-- (FREE, OPEN, ASSIGNED) number twice the running enabled builders or more, so the active
-- set stays bounded. Finished rows grow by about 7 tasks and 0.7 builds per step (measured
-- over 300 steps on the default data set), about 5,000 tasks an hour at one step every 5 s.
\set ON_ERROR_STOP on
\o /dev/null

-- Finish running tasks that do the work; parents that wait on subtasks finish further
-- down. A per-step chance gives each method a typical duration. Most tasks end CLOSED,
-- some FAILED and a few CANCELED.
UPDATE task AS t
SET state = CASE WHEN d.r_outcome < 0.90 THEN 2 WHEN d.r_outcome < 0.97 THEN 5 ELSE 3 END,
    completion_time = now(),
    awaited = CASE WHEN t.awaited IS NOT NULL THEN FALSE END
FROM (SELECT id, random() AS r_done, random() AS r_outcome,
             CASE method
                 WHEN 'buildArch' THEN 0.05
                 WHEN 'createImage' THEN 0.03
                 WHEN 'createLiveMedia' THEN 0.03
                 WHEN 'buildSRPMFromSCM' THEN 0.25
                 WHEN 'createrepo' THEN 0.2
                 WHEN 'createdistrepo' THEN 0.2
                 WHEN 'tagBuild' THEN 0.7
                 WHEN 'tagNotification' THEN 0.7
                 WHEN 'buildNotification' THEN 0.7
                 ELSE 0.08
             END AS chance
      FROM task
      WHERE state = 1
        AND method NOT IN ('build', 'newRepo', 'image', 'livemedia', 'distRepo')) AS d
WHERE t.id = d.id AND d.r_done < d.chance;

-- Users cancel the odd top-level task before it starts; it keeps no start_time.
UPDATE task
SET state = 3, completion_time = now()
WHERE state = 0 AND parent IS NULL AND random() < 0.002;

-- A parent whose subtask failed or was canceled fails. The hub cancels the siblings that
-- still run, and the parent's build fails with it.
WITH failed_parent AS (
    UPDATE task AS p
    SET state = 5, completion_time = now(), waiting = FALSE
    WHERE p.state = 1
      AND EXISTS (SELECT FROM task AS c WHERE c.parent = p.id AND c.state IN (3, 5))
    RETURNING p.id),
canceled_child AS (
    UPDATE task AS c
    SET state = 3, completion_time = now(), awaited = FALSE
    FROM failed_parent AS f
    WHERE c.parent = f.id AND c.state IN (0, 1, 4)
    RETURNING c.id)
UPDATE build AS b
SET state = 3, completion_time = now()
FROM failed_parent AS f
WHERE b.task_id = f.id AND b.state = 0;

-- A parent whose subtasks all closed is done, unless a build still has a stage to go
-- (buildArch after the SRPM, tagBuild after buildArch while its build row is BUILDING). Its build
-- becomes COMPLETE and is tagged into the target's destination tag, and the hub queues a
-- buildNotification.
WITH done_parent AS (
    UPDATE task AS p
    SET state = 2, completion_time = now(), waiting = FALSE
    WHERE p.state = 1
      AND p.method IN ('build', 'newRepo', 'image', 'livemedia', 'distRepo')
      AND EXISTS (SELECT FROM task AS c WHERE c.parent = p.id)
      AND NOT EXISTS (SELECT FROM task AS c WHERE c.parent = p.id AND c.state <> 2)
      AND (p.method <> 'build'
           OR (EXISTS (SELECT FROM task AS c WHERE c.parent = p.id AND c.method = 'buildArch')
               AND (EXISTS (SELECT FROM task AS c WHERE c.parent = p.id AND c.method = 'tagBuild')
                    OR NOT EXISTS (SELECT FROM build AS b WHERE b.task_id = p.id AND b.state = 0))))
    RETURNING p.id, p.method, p.owner, p.channel_id, p.request),
completed_build AS (
    UPDATE build AS b
    SET state = 1, completion_time = now()
    FROM done_parent AS p
    WHERE b.task_id = p.id AND b.state = 0
    RETURNING b.id, b.owner, p.request),
tagged AS (
    INSERT INTO tag_listing (build_id, tag_id, creator_id)
    SELECT b.id, c.dest_tag, b.owner
    FROM completed_build AS b
    JOIN build_target AS bt
        ON bt.name = substring(b.request FROM '</param><param><value><string>([^<]+)</string>')
    JOIN build_target_config AS c ON c.build_target_id = bt.id AND c.active
    RETURNING build_id)
INSERT INTO task (state, create_time, channel_id, owner, method, request, arch, priority)
SELECT 0, now(), p.channel_id, p.owner, 'buildNotification',
       '<?xml version=''1.0''?><methodCall><methodName>buildNotification</methodName><params>'
           || '<param><value><int>' || b.id || '</int></value></param></params></methodCall>',
       'noarch', 20
FROM done_parent AS p
JOIN build AS b ON b.task_id = p.id
WHERE p.method = 'build';

-- An opened build first builds its SRPM; an opened newRepo runs createrepo per arch of its
-- build tag. The parent then waits on them.
WITH parent AS (
    SELECT p.*,
           substring(p.request FROM '<string>(git\+[^<]+)</string>') AS source,
           substring(p.request FROM '</param><param><value><string>([^<]+)</string>') AS target,
           substring(p.request FROM '<string>([^<]+)</string>') AS tag_name
    FROM task AS p
    WHERE p.state = 1 AND p.method IN ('build', 'newRepo')
      AND NOT EXISTS (SELECT FROM task AS c WHERE c.parent = p.id)),
spawned AS (
    INSERT INTO task (state, create_time, channel_id, parent, label, awaited, owner, method,
                      request, arch, priority)
    SELECT 0, now(), p.channel_id, p.id, 'srpm', TRUE, p.owner, 'buildSRPMFromSCM',
           '<?xml version=''1.0''?><methodCall><methodName>buildSRPMFromSCM</methodName><params>'
               || '<param><value><string>' || p.source || '</string></value></param>'
               || '<param><value><string>' || coalesce(build_tag.name, '') || '</string></value></param>'
               || '</params></methodCall>',
           'noarch', p.priority - 1
    FROM parent AS p
    LEFT JOIN build_target AS bt ON bt.name = p.target
    LEFT JOIN build_target_config AS c ON c.build_target_id = bt.id AND c.active
    LEFT JOIN tag AS build_tag ON build_tag.id = c.build_tag
    WHERE p.method = 'build'
    UNION ALL
    SELECT 0, now(), p.channel_id, p.id, a.arch, TRUE, p.owner, 'createrepo',
           '<?xml version=''1.0''?><methodCall><methodName>createrepo</methodName><params>'
               || '<param><value><string>' || a.arch || '</string></value></param></params></methodCall>',
           'noarch', p.priority - 1
    FROM parent AS p
    JOIN tag AS t ON t.name = p.tag_name
    JOIN tag_config AS tc ON tc.tag_id = t.id AND tc.active
    CROSS JOIN LATERAL unnest(string_to_array(coalesce(tc.arches, 'x86_64'), ' ')) AS a (arch)
    WHERE p.method = 'newRepo'
    RETURNING parent)
UPDATE task
SET waiting = TRUE
WHERE id IN (SELECT parent FROM spawned);

-- After the SRPM, a build gets one buildArch per arch and, unless it is a scratch build,
-- its BUILDING build row. Versions count up per package as in demo_data.sql.
WITH parent AS (
    SELECT p.*, random() AS r_arches,
           substring(p.request FROM 'rpms/([^<]+?)\.git#') AS package_name,
           substring(p.request FROM '<string>(git\+[^<]+)</string>') AS source,
           substring(p.request FROM '</param><param><value><string>([^<]+)</string>') AS target,
           p.request LIKE '%<name>scratch</name>%' AS scratch
    FROM task AS p
    WHERE p.state = 1 AND p.method = 'build'
      AND EXISTS (SELECT FROM task AS c WHERE c.parent = p.id AND c.method = 'buildSRPMFromSCM'
                                            AND c.state = 2)
      AND NOT EXISTS (SELECT FROM task AS c WHERE c.parent = p.id AND c.method = 'buildArch')),
new_build AS (
    INSERT INTO build (volume_id, pkg_id, version, release, source, start_time, state, task_id, owner)
    SELECT 0, pkg.id,
           (n.n / 12 + 1) || '.' || (n.n / 3 % 4) || '.' || (n.n % 3),
           (1 + n.n % 2) || '.' || regexp_replace(regexp_replace(p.target, '^epel', 'el'), '^f', 'fc'),
           p.source, now(), 0, p.id, p.owner
    FROM parent AS p
    JOIN package AS pkg ON pkg.name = p.package_name
    CROSS JOIN LATERAL (SELECT count(*) AS n FROM build AS b WHERE b.pkg_id = pkg.id) AS n
    WHERE NOT p.scratch
    ON CONFLICT ON CONSTRAINT build_pkg_ver_rel DO NOTHING
    RETURNING task_id)
INSERT INTO task (state, create_time, channel_id, parent, label, awaited, owner, method, request,
                  arch, priority)
SELECT 0, now(), p.channel_id, p.id, a.arch, TRUE, p.owner, 'buildArch',
       '<?xml version=''1.0''?><methodCall><methodName>buildArch</methodName><params>'
           || '<param><value><string>tasks/' || p.id % 10000 || '/' || p.id || '/'
           || coalesce(p.package_name, 'unknown') || '.src.rpm</string></value></param>'
           || '<param><value><string>' || coalesce(build_tag.name, '') || '</string></value></param>'
           || '<param><value><string>' || a.arch || '</string></value></param></params></methodCall>',
       a.arch, p.priority - 1
FROM parent AS p
LEFT JOIN build_target AS bt ON bt.name = p.target
LEFT JOIN build_target_config AS c ON c.build_target_id = bt.id AND c.active
LEFT JOIN tag AS build_tag ON build_tag.id = c.build_tag
CROSS JOIN LATERAL unnest(CASE
    WHEN p.r_arches < 0.3 THEN ARRAY['noarch']
    WHEN p.target LIKE 'f%' AND p.r_arches < 0.55 THEN ARRAY['x86_64', 'i686', 'aarch64', 'ppc64le', 's390x']
    ELSE ARRAY['x86_64', 'aarch64', 'ppc64le', 's390x']
END) AS a (arch);

-- After every buildArch closed, a non-scratch build tags its result with a tagBuild subtask.
INSERT INTO task (state, create_time, channel_id, parent, label, awaited, owner, method, request,
                  arch, priority)
SELECT 0, now(), p.channel_id, p.id, 'tag', TRUE, p.owner, 'tagBuild',
       '<?xml version=''1.0''?><methodCall><methodName>tagBuild</methodName><params>'
           || '<param><value><int>' || c.dest_tag || '</int></value></param>'
           || '<param><value><int>' || b.id || '</int></value></param></params></methodCall>',
       'noarch', p.priority - 1
FROM task AS p
JOIN build AS b ON b.task_id = p.id AND b.state = 0
JOIN build_target AS bt
    ON bt.name = substring(p.request FROM '</param><param><value><string>([^<]+)</string>')
JOIN build_target_config AS c ON c.build_target_id = bt.id AND c.active
WHERE p.state = 1 AND p.method = 'build'
  AND EXISTS (SELECT FROM task AS k WHERE k.parent = p.id AND k.method = 'buildArch')
  AND NOT EXISTS (SELECT FROM task AS k WHERE k.parent = p.id AND k.method = 'buildArch' AND k.state <> 2)
  AND NOT EXISTS (SELECT FROM task AS k WHERE k.parent = p.id AND k.method = 'tagBuild');

-- A parent waits while any subtask is active.
UPDATE task AS p
SET waiting = FALSE
WHERE p.state = 1 AND p.waiting
  AND NOT EXISTS (SELECT FROM task AS c WHERE c.parent = p.id AND c.state IN (0, 1, 4));

-- New top-level tasks arrive while the active set is below its bound: builds of random
-- packages for a current release, repo regenerations, tagging and notifications.
WITH bound AS (
    SELECT (SELECT count(*) FROM task WHERE state IN (0, 1, 4)) AS active,
           2 * (SELECT count(*)
                FROM host AS h
                JOIN host_config AS hc ON hc.host_id = h.id AND hc.active AND hc.enabled
                WHERE h.update_time > now() - interval '1 hour') AS maximum),
arrival AS (
    SELECT n, random() AS r_method, random() AS r_package, random() AS r_target
    FROM generate_series(1, floor(random() * 5)::integer) AS n, bound
    WHERE bound.active < bound.maximum),
chosen AS (
    SELECT a.*,
           CASE WHEN a.r_method < 0.40 THEN 'build'
                WHEN a.r_method < 0.50 THEN 'newRepo'
                WHEN a.r_method < 0.70 THEN 'tagBuild'
                WHEN a.r_method < 0.85 THEN 'buildNotification'
                ELSE 'tagNotification' END AS method,
           pkg.name AS package_name,
           target.name AS target, target.build_tag, target.dest_tag
    FROM arrival AS a
    CROSS JOIN LATERAL (
        SELECT p.name FROM package AS p
        WHERE p.id = 1 + floor(a.r_package * (SELECT max(id) FROM package))::integer) AS pkg
    CROSS JOIN LATERAL (
        SELECT bt.name, build_tag.name AS build_tag, c.dest_tag
        FROM build_target AS bt
        JOIN build_target_config AS c ON c.build_target_id = bt.id AND c.active
        JOIN tag AS build_tag ON build_tag.id = c.build_tag
        WHERE bt.name ~ '^(f|epel)[0-9]+$'
        ORDER BY bt.name
        OFFSET floor(a.r_target * (SELECT count(*)
                                   FROM build_target AS t2
                                   JOIN build_target_config AS c2
                                       ON c2.build_target_id = t2.id AND c2.active
                                   WHERE t2.name ~ '^(f|epel)[0-9]+$'))::integer
        LIMIT 1) AS target)
INSERT INTO task (state, create_time, channel_id, owner, method, request, arch, priority)
SELECT 0, now(), c.id,
       CASE WHEN a.method = 'newRepo' THEN (SELECT id FROM users WHERE name = 'kojira')
            WHEN a.method = 'tagBuild' THEN (SELECT id FROM users WHERE name = 'bodhi')
            ELSE (SELECT id FROM users WHERE usertype = 0 AND status = 0
                  ORDER BY id OFFSET floor(a.r_package * 500)::integer LIMIT 1) END,
       a.method,
       '<?xml version=''1.0''?><methodCall><methodName>' || a.method || '</methodName><params>'
           || CASE a.method
                  WHEN 'build' THEN
                      '<param><value><string>git+https://src.example.org/rpms/' || a.package_name
                      || '.git#' || md5(random()::text) || '</string></value></param>'
                      || '<param><value><string>' || a.target || '</string></value></param>'
                      || '<param><value><struct></struct></value></param>'
                  WHEN 'newRepo' THEN '<param><value><string>' || a.build_tag || '</string></value></param>'
                  ELSE '<param><value><int>' || a.dest_tag || '</int></value></param>'
              END
           || '</params></methodCall>',
       'noarch',
       CASE a.method WHEN 'newRepo' THEN 15 WHEN 'tagBuild' THEN 10 ELSE 20 END
FROM chosen AS a
JOIN channels AS c ON c.name = CASE WHEN a.method = 'newRepo' THEN 'createrepo' ELSE 'default' END;

-- The hub scheduler assigns FREE tasks, highest priority first, to ready enabled builders
-- that updated within the last minute, listen on the task's enabled channel, support its
-- arch (noarch runs anywhere), have capacity left and fewer tasks than maxjobs. Load here
-- is the weight of the host's ASSIGNED and OPEN tasks that do not wait, as the scheduler
-- counts it. A host gets at most one new task per step.
WITH host_load AS (
    SELECT h.id, hc.capacity, hc.arches,
           coalesce(sum(t.weight) FILTER (WHERE t.waiting IS NOT TRUE), 0) AS load,
           count(t.id) AS jobs,
           coalesce((d.data ->> 'maxjobs')::integer, 10) AS maxjobs
    FROM host AS h
    JOIN host_config AS hc ON hc.host_id = h.id AND hc.active AND hc.enabled
    LEFT JOIN task AS t ON t.host_id = h.id AND t.state IN (1, 4)
    LEFT JOIN scheduler_host_data AS d ON d.host_id = h.id
    WHERE h.ready AND h.update_time > now() - interval '1 minute'
    GROUP BY h.id, hc.capacity, hc.arches, d.data),
candidate AS (
    SELECT t.id AS task_id, t.priority, l.id AS host_id, random() AS r
    FROM (SELECT id, channel_id, arch, priority FROM task WHERE state = 0
          ORDER BY priority, id LIMIT 1000) AS t
    JOIN channels AS c ON c.id = t.channel_id AND c.enabled
    JOIN host_channels AS m ON m.channel_id = t.channel_id AND m.active
    JOIN host_load AS l ON l.id = m.host_id
    WHERE l.load < l.capacity AND l.jobs < l.maxjobs
      AND (t.arch = 'noarch' OR t.arch = ANY (string_to_array(l.arches, ' ')))),
per_task AS (
    SELECT DISTINCT ON (task_id) task_id, priority, host_id FROM candidate ORDER BY task_id, r),
per_host AS (
    SELECT DISTINCT ON (host_id) task_id, host_id FROM per_task ORDER BY host_id, priority, task_id)
UPDATE task AS t
SET state = 4, host_id = a.host_id
FROM per_host AS a
WHERE t.id = a.task_id AND t.state = 0;

-- kojid opens most of its assigned tasks on its next poll and sets their weight. tagBuild,
-- waitrepo, runroot, image, livemedia and unknown methods get estimates; the others the
-- values of kojid's task handlers. buildArch adds 0.75 per hour of the package's usual
-- build time, here a random 0 to 3.3 hours.
UPDATE task
SET state = 1,
    start_time = now(),
    weight = CASE method
        WHEN 'buildArch' THEN 1.5 + random() * 2.5
        WHEN 'build' THEN 0.2
        WHEN 'buildSRPMFromSCM' THEN 1.0
        WHEN 'createrepo' THEN 1.5
        WHEN 'createdistrepo' THEN 1.5
        WHEN 'createLiveMedia' THEN 1.5
        WHEN 'createImage' THEN 2.0
        WHEN 'runroot' THEN 2.0
        WHEN 'waitrepo' THEN 0.2
        WHEN 'newRepo' THEN 0.1
        WHEN 'distRepo' THEN 0.1
        WHEN 'image' THEN 0.1
        WHEN 'livemedia' THEN 0.1
        WHEN 'tagBuild' THEN 0.1
        WHEN 'tagNotification' THEN 0.1
        WHEN 'buildNotification' THEN 0.1
        ELSE 1.0
    END
WHERE state = 4 AND random() < 0.7;

-- Running builders poll about every 15 seconds, so each step refreshes a random 40 % of
-- them and any that has been quiet for 15 seconds. Builders count as running when they
-- updated within the last hour. The stale ones and those never started stay as they are.
-- Disabled hosts keep polling, as kojid does. kojid reports the weight of its OPEN tasks
-- that do not wait. It reports ready unless the host is disabled, over capacity, runs
-- maxjobs tasks, or has id % 37 = 5, which is the rule demo_data.sql uses for builders
-- that are not ready for a reason the database cannot show.
WITH polling AS MATERIALIZED (
    SELECT id, user_id
    FROM host
    WHERE update_time > now() - interval '1 hour'
      AND (random() < 0.4 OR update_time < now() - interval '15 seconds')),
report AS (
    SELECT h.id, h.user_id,
           coalesce(sum(t.weight) FILTER (WHERE t.waiting IS NOT TRUE), 0) AS task_load,
           count(t.id) AS jobs,
           hc.enabled, hc.capacity,
           coalesce((d.data ->> 'maxjobs')::integer, 10) AS maxjobs
    FROM polling AS h
    JOIN host_config AS hc ON hc.host_id = h.id AND hc.active
    LEFT JOIN task AS t ON t.host_id = h.id AND t.state = 1
    LEFT JOIN scheduler_host_data AS d ON d.host_id = h.id
    GROUP BY h.id, h.user_id, hc.enabled, hc.capacity, d.data),
updated AS (
    UPDATE host AS h
    SET update_time = now(),
        task_load = r.task_load,
        ready = r.enabled AND h.id % 37 <> 5 AND r.task_load <= r.capacity AND r.jobs < r.maxjobs
    FROM report AS r
    WHERE h.id = r.id
    RETURNING h.user_id)
UPDATE sessions AS s
SET update_time = now(), callnum = coalesce(s.callnum, 0) + 1
FROM updated AS u
WHERE s.user_id = u.user_id AND s.exclusive AND NOT s.expired;

\o
