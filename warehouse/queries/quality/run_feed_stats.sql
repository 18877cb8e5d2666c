-- Files and records received / accepted / quarantined per run × feed (quality.run_feed_stats,
-- written as each file is staged), oldest run first.
SELECT
    s.run_id,
    r.started_at,
    s.feed,
    s.n_files,
    s.n_received,
    s.n_accepted,
    s.n_quarantined
FROM quality.run_feed_stats AS s
LEFT JOIN raw.runs AS r USING (run_id)
ORDER BY r.started_at, s.run_id, s.feed
