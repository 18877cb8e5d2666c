-- Cohort report: the latest successful pipeline run (names the per-run report copy).
WITH
runs AS (
    SELECT run_id, started_at, finished_at, status FROM raw.runs
)

SELECT run_id, finished_at
FROM runs
WHERE status = 'success'
ORDER BY started_at DESC, run_id DESC
LIMIT 1
