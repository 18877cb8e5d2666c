-- Open quarantine rows a release selects: by ids ($ids, NULL = any), check and feed (NULL =
-- any). Duplicate deliveries are excluded: re-staging cannot release them.
SELECT quarantine_id
FROM quality.quarantine
WHERE released_at IS NULL
    AND check_name <> 'duplicate_file'
    AND ($ids IS NULL OR list_contains($ids, quarantine_id))
    AND ($check_name IS NULL OR check_name = $check_name)
    AND ($feed IS NULL OR feed = $feed)
ORDER BY quarantine_id
