-- Quarantined records of a run per feed × check: how many, how many are still held and how
-- many were released since (after a mapping fix).
SELECT
    feed,
    check_name,
    count(*) AS n_records,
    count(*) FILTER (WHERE released_at IS NULL) AS n_open,
    count(*) FILTER (WHERE released_at IS NOT NULL) AS n_released,
    count(DISTINCT file_sha256) AS n_files
FROM quality.quarantine
WHERE run_id = $run_id
GROUP BY feed, check_name
ORDER BY feed, n_records DESC, check_name
