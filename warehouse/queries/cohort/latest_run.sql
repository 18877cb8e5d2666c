-- Cohort report: the latest pipeline run that did not fail (names the per-run report copy).
-- The snapshot shows its own run finished ('success'); 'running' stays for snapshots that an
-- older version published during their run.
WITH
runs AS (
    SELECT run_id, started_at, finished_at, status FROM raw.runs
)

SELECT run_id, finished_at
FROM runs
WHERE status IN ('success', 'running')
ORDER BY started_at DESC, run_id DESC
LIMIT 1
