-- Up to $n_examples examples per feed × check of a run: the readable reason, the
-- de-identified excerpt and where the record sits (file name, position). The report masks
-- anything identifier-like again before display. The run's records are those of
-- quarantine_reasons.sql: put aside first by the run, or held again by its re-stage of a file.
WITH
held AS (
    SELECT
        q.quarantine_id,
        q.file_sha256,
        q.feed,
        q.check_name,
        q.reason,
        q.excerpt,
        q.position,
        q.released_at,
        f.name AS file_name,
        row_number() OVER (
            PARTITION BY q.feed, q.check_name ORDER BY q.quarantine_id
        ) AS example_no
    FROM quality.quarantine AS q
    LEFT JOIN raw.files AS f USING (file_sha256)
    WHERE
        q.run_id = $run_id
        OR (
            f.run_id = $run_id
            AND q.released_at IS NULL
            AND q.check_name <> 'duplicate_file'
        )
)

SELECT
    quarantine_id,
    file_sha256,
    feed,
    check_name,
    reason,
    excerpt,
    position,
    file_name,
    released_at IS NOT NULL AS is_released
FROM held
WHERE example_no <= $n_examples
ORDER BY feed, check_name, quarantine_id
