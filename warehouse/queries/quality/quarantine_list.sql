-- Quarantined records for review, newest first: optional $feed / $check_name filters (NULL =
-- any), open ones only unless $include_released; $quarantine_id selects one record (NULL = all).
SELECT
    q.quarantine_id,
    q.feed,
    q.source,
    q.check_name,
    q.reason,
    q.excerpt,
    q.position,
    f.name AS file_name,
    q.file_sha256,
    q.message_control_id,
    q.run_id,
    q.quarantined_at,
    q.released_at,
    q.release_run_id
FROM quality.quarantine AS q
LEFT JOIN raw.files AS f USING (file_sha256)
WHERE ($feed IS NULL OR q.feed = $feed)
    AND ($check_name IS NULL OR q.check_name = $check_name)
    AND ($include_released OR q.released_at IS NULL)
    AND ($quarantine_id IS NULL OR q.quarantine_id = $quarantine_id)
ORDER BY q.quarantined_at DESC, q.quarantine_id DESC
