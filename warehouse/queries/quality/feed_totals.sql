-- Distinct files and their records received / accepted / quarantined per feed, over every
-- run (the warehouse totals `labwh run` prints after a run).
SELECT
    feed,
    count(*) AS n_files,
    coalesce(sum(n_received), 0) AS n_received,
    coalesce(sum(n_accepted), 0) AS n_accepted,
    coalesce(sum(n_quarantined), 0) AS n_quarantined
FROM raw.files
GROUP BY feed
ORDER BY feed
