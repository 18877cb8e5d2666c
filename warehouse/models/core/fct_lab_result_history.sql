-- core.fct_lab_result_history: one row per version of a lab result (every OBX / CSV row that
-- reached core), ordered by the message time that made it. A correction (C) supersedes the
-- earlier version of the same OBR-3 filler order + OBX-3 code + OBX-4 sub-id; D / W retract.
-- Out-of-order arrival ends in the same state because versions are ordered by MSH-7, not by
-- arrival. Quarantined rows (not released) never enter.
WITH
staged AS (
    SELECT *, 'hl7' AS feed FROM staging.stg_hl7__lab_result
    UNION ALL BY NAME
    SELECT *, 'lab_csv' AS feed FROM staging.stg_lab_csv__lab_result
),

received AS (
    -- only files whose every chunk is staged (a file being staged is not yet 'parsed')
    SELECT file_sha256, received_at, name AS landing_name FROM raw.files WHERE status = 'parsed'
),

accepted AS (
    SELECT s.*, r.received_at, r.landing_name
    FROM staged AS s
    JOIN received AS r USING (file_sha256)
    ANTI JOIN quality.held_records AS h USING (file_sha256, position)
),

occurrences AS (
    SELECT
        *,
        -- the k-th OBX with the same code and sub-id in one order of one message: repeated
        -- OBX without OBX-4 are distinct results, not versions of one (without OBR-3 the
        -- order is told by its collection time, as in the result key below). A CSV file is
        -- not a message: a second row of an accession's code is a version of the first (an
        -- export of every version, or two exports joined), as it is in a later file, unless
        -- the accession is a series (below).
        CASE WHEN feed = 'hl7' THEN
            row_number() OVER (
                PARTITION BY file_sha256, message_index, patient_key, filler_order_number,
                    CASE WHEN filler_order_number IS NULL THEN collected_at END, source_code,
                    sub_id
                ORDER BY segment_index, length(position), position
            )
        ELSE 1 END AS occurrence,
        -- CSV: one file holds this accession's code at several collection times (a series
        -- of draws)
        CASE WHEN feed <> 'hl7' AND filler_order_number IS NOT NULL THEN
            count(DISTINCT collected_at) OVER (
                PARTITION BY file_sha256, patient_key, filler_order_number, source_code, sub_id
            )
        END AS times_in_file
    FROM accepted
),

series AS (
    -- a series is one in every file: a later correction of one draw is keyed by its time too,
    -- while the single draw of an ordinary accession is named by the accession alone (a
    -- version that moves its collection time, or a deletion sent with a date only, still
    -- supersedes it)
    SELECT
        *,
        coalesce(max(times_in_file) OVER (
            PARTITION BY feed, source_system, patient_key, filler_order_number, source_code,
                sub_id
        ), 1) > 1 AS is_series
    FROM occurrences
),

keyed AS (
    SELECT
        *,
        -- the identity of a result across versions
        CASE
            -- (a CSV accession that is a series of draws also needs the collection time: a
            -- CSV row has no message to count the draws in)
            WHEN filler_order_number IS NOT NULL THEN
                concat_ws('|', feed, coalesce(sending_facility, source_system), patient_key,
                          filler_order_number, source_code, coalesce(sub_id, ''),
                          CAST(occurrence AS VARCHAR),
                          CASE WHEN is_series THEN CAST(collected_at AS VARCHAR) END)
            -- without OBR-3: code + collection time, and OBX-4 when sent; in an HL7 message
            -- the k-th repeat of the code (k > 1) is a result of its own, as with OBR-3
            -- (concat_ws skips NULLs, so the key of a first or only result is as it always
            -- was; a CSV row has no message to count repeats in)
            ELSE concat_ws('|', feed, source_system, patient_key, source_code,
                           coalesce(CAST(collected_at AS VARCHAR), file_sha256 || position),
                           sub_id,
                           CASE WHEN feed = 'hl7' AND occurrence > 1
                               THEN '#' || CAST(occurrence AS VARCHAR) END)
        END AS result_key,
        CASE upper(coalesce(result_status, 'F'))
            WHEN 'P' THEN 1 WHEN 'R' THEN 1 WHEN 'I' THEN 0
            WHEN 'F' THEN 2 WHEN 'A' THEN 3 WHEN 'B' THEN 3 WHEN 'C' THEN 3
            WHEN 'D' THEN 4 WHEN 'W' THEN 4
            ELSE 2
        END AS status_rank
    FROM series
),

ordered AS (
    SELECT
        *,
        md5(result_key) AS result_id,
        coalesce(message_at, received_at) AS version_at,
        row_number() OVER w AS version_no,
        count(*) OVER (PARTITION BY result_key) AS n_versions,
        lead(coalesce(message_at, received_at)) OVER w AS next_version_at
    FROM keyed
    WINDOW w AS (
        PARTITION BY result_key
        -- of equal message time and status, a CSV version with a result over one without
        -- (a `TNP` row beside the value in one file or run: a later file is later already),
        -- then the later arrival (a file re-sent with a fixed
        -- value, MSH-7 unchanged); without message times (CSV), versions of one run follow
        -- the landing name, then the line: positions share their prefix, so the shorter is
        -- the smaller ('line 9' before 'line 10')
        ORDER BY coalesce(message_at, received_at), status_rank,
                 CASE WHEN feed <> 'hl7' THEN value IS NOT NULL OR value_text IS NOT NULL END,
                 received_at, landing_name,
                 file_sha256, message_index, segment_index, length(position), position
    )
)

SELECT
    result_id,
    version_no,
    n_versions,
    version_no = n_versions AS is_latest_version,
    upper(coalesce(result_status, 'F')) IN ('D', 'W') AS is_retraction,
    version_at AS valid_from,
    next_version_at AS valid_to,
    patient_key,
    feed,
    source_system,
    sending_facility,
    source_code,
    source_text,
    source_code_system,
    alt_code,
    loinc_code,
    analyte,
    is_mapped,
    collected_at,
    observed_at,
    value,
    unit,
    comparator,
    original_value,
    original_unit,
    value_text,
    detection_limit,
    method,
    reference_range,
    abnormal_flags,
    upper(coalesce(result_status, 'F')) AS result_status,
    filler_order_number,
    sub_id,
    message_control_id,
    message_at,
    file_sha256,
    position,
    received_at
FROM ordered
