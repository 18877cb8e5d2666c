-- Records a run released (a `labwh quarantine release` or a reprocess after a fix: its
-- re-stage no longer produced them), per feed × check, whichever run first put them aside.
SELECT
    feed,
    check_name,
    count(*) AS n_released,
    count(DISTINCT file_sha256) AS n_files
FROM quality.quarantine
WHERE release_run_id = $run_id
GROUP BY feed, check_name
ORDER BY feed, n_released DESC, check_name
