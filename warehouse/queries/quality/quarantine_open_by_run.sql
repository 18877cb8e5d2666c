-- Records still held in quarantine, per run that put them aside × check (all runs).
SELECT
    q.run_id,
    q.check_name,
    count(*) AS n_open
FROM quality.quarantine AS q
WHERE q.released_at IS NULL
GROUP BY q.run_id, q.check_name
ORDER BY q.run_id, q.check_name
