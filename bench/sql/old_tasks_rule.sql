-- The task rule before it became incremental: one count per channel and method over the
-- whole task table, with no tag label. bench/run.sh times it in psql as the cheapest full
-- count of the task metrics.
SELECT c.name AS channel,
       counts.method,
       counts.tasks,
       counts.waiting,
       counts.in_progress,
       counts.completed,
       counts.succeeded,
       counts.failed
FROM (
    SELECT channel_id,
           method,
           count(*) AS tasks,
           count(*) FILTER (WHERE state IN (0, 4)) AS waiting,
           count(*) FILTER (WHERE state = 1) AS in_progress,
           count(*) FILTER (WHERE state IN (2, 3, 5)) AS completed,
           count(*) FILTER (WHERE state = 2) AS succeeded,
           count(*) FILTER (WHERE state = 5) AS failed
    FROM task
    GROUP BY channel_id, method
) AS counts
JOIN channels AS c ON c.id = counts.channel_id;
