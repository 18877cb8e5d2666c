-- The files a run staged (raw.files.run_id is the run that last staged the file), with their
-- record counts; names are masked by the report before display.
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
ORDER BY feed, name
