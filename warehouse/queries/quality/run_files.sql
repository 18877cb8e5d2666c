-- The files a run staged (raw.files.run_id is the run that last staged the file), with their
-- record counts, and the deliveries of already-received bytes it put aside (status
-- 'duplicate': one record received, one quarantined as duplicate_file, filed under the
-- original's file_sha256), so that the rows add up to the run's feed totals; names are
-- masked by the report before display.
SELECT
    file_sha256,
    feed,
    source,
    name,
    bytes,
    received_at,
    status,
    n_received,
    n_accepted,
    n_quarantined
FROM raw.files
WHERE run_id = $run_id

UNION ALL

SELECT
    d.file_sha256,
    d.feed,
    f.source,
    d.name,
    f.bytes,
    d.received_at,
    'duplicate' AS status,
    1 AS n_received,
    0 AS n_accepted,
    1 AS n_quarantined
FROM raw.deliveries AS d
LEFT JOIN raw.files AS f USING (file_sha256)
WHERE d.run_id = $run_id AND d.is_duplicate

ORDER BY feed, name
