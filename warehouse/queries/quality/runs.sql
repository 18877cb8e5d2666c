-- Every pipeline run with its record totals over all feeds, oldest first (trend chart).
WITH
runs AS (
    SELECT run_id, started_at, finished_at, status, n_files_new FROM raw.runs
),

stats AS (
    SELECT
        run_id,
        CAST(sum(n_files) AS BIGINT) AS n_files,
        CAST(sum(n_received) AS BIGINT) AS n_received,
        CAST(sum(n_accepted) AS BIGINT) AS n_accepted,
        CAST(sum(n_quarantined) AS BIGINT) AS n_quarantined
    FROM quality.run_feed_stats
    GROUP BY run_id
)

SELECT
    r.run_id,
    r.started_at,
    r.finished_at,
    r.status,
    coalesce(s.n_files, 0) AS n_files,
    coalesce(s.n_received, 0) AS n_received,
    coalesce(s.n_accepted, 0) AS n_accepted,
    coalesce(s.n_quarantined, 0) AS n_quarantined
FROM runs AS r
LEFT JOIN stats AS s USING (run_id)
ORDER BY r.started_at, r.run_id
