-- Cohort report: the latest pipeline run that did not fail (names the per-run report copy).
-- The published snapshot is written during its run, so that run shows as 'running' there.
WITH
runs AS (
    SELECT run_id, started_at, finished_at, status FROM raw.runs
)

SELECT run_id, finished_at
FROM runs
WHERE status IN ('success', 'running')
ORDER BY started_at DESC, run_id DESC
LIMIT 1
