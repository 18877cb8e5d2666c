-- Files holding the selected open quarantine rows, as (sha, feed, name) for re-staging.
-- Duplicate deliveries are never released by re-staging (their bytes are already staged).
SELECT DISTINCT
    q.file_sha256,
    f.feed,
    f.name
FROM quality.quarantine AS q
JOIN raw.files AS f USING (file_sha256)
WHERE list_contains($ids, q.quarantine_id)
ORDER BY f.feed, f.name
