-- Records still held in quarantine, over all runs, per feed × check (`labwh status`).
SELECT
    feed,
    check_name,
    count(*) AS n_open,
    count(DISTINCT file_sha256) AS n_files
FROM quality.quarantine
WHERE released_at IS NULL
GROUP BY feed, check_name
ORDER BY n_open DESC, feed, check_name
