-- Quarantined records of a run per feed × check: how many, how many are still held and how
-- many were released since (after a mapping fix).
-- A run's records: those it put aside first (quarantine.run_id), and those its parse of a
-- file it re-staged (a release, a reprocess: raw.files.run_id is the run that last staged
-- the file) held again. A record held again keeps the run of its first sighting, so without
-- the second part a release run's report counted them as quarantined in its feed table and
-- listed none of them here. Duplicate deliveries are filed under the original's file: only
-- the run that received them counts them.
WITH
run_records AS (
    SELECT
        q.feed,
        q.check_name,
        q.released_at,
        q.file_sha256
    FROM quality.quarantine AS q
    LEFT JOIN raw.files AS f USING (file_sha256)
    WHERE
        q.run_id = $run_id
        OR (
            f.run_id = $run_id
            AND q.released_at IS NULL
            AND q.check_name <> 'duplicate_file'
        )
)

SELECT
    feed,
    check_name,
    count(*) AS n_records,
    count(*) FILTER (WHERE released_at IS NULL) AS n_open,
    count(*) FILTER (WHERE released_at IS NOT NULL) AS n_released,
    count(DISTINCT file_sha256) AS n_files
FROM run_records
GROUP BY feed, check_name
ORDER BY feed, n_records DESC, check_name
