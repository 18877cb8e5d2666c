-- After a release: which of the selected rows were released, which are still held, and
-- records of the same files put aside again under another check by the release run.
WITH
selected AS (
    SELECT quarantine_id, file_sha256, position
    FROM quality.quarantine
    WHERE list_contains($ids, quarantine_id)
),

other_checks AS (
    SELECT q.quarantine_id
    FROM quality.quarantine AS q
    SEMI JOIN selected AS s USING (file_sha256, position)
    WHERE q.released_at IS NULL
        AND q.run_id = $run_id
        AND NOT list_contains($ids, q.quarantine_id)
)

SELECT
    (SELECT count(*) FROM quality.quarantine
     WHERE list_contains($ids, quarantine_id) AND released_at IS NOT NULL) AS released,
    (SELECT count(*) FROM quality.quarantine
     WHERE list_contains($ids, quarantine_id) AND released_at IS NULL) AS still_quarantined,
    (SELECT count(*) FROM other_checks) AS quarantined_under_other_check
