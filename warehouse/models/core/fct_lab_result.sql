-- core.fct_lab_result: one row per lab result, its current version (the latest version in
-- core.fct_lab_result_history), catalogued or not. Results whose latest version is a
-- retraction (D / W) are not current and are absent here (they stay in the history).
-- A latest version with status U (HL7 table 0085: "results status change to final without
-- retransmitting results already sent as preliminary") is final: its status here is F, and
-- when it carries no result (OBX-5 empty) the result is that of the last earlier version
-- that had one (not a retraction); the history keeps the U as sent.
WITH
history AS (
    SELECT * FROM core.fct_lab_result_history
),

latest AS (
    SELECT *
    FROM history
    WHERE is_latest_version AND NOT is_retraction
),

-- the result a U without one makes final: the last earlier version with a result
finalized AS (
    SELECT
        h.result_id,
        arg_max(
            {
                'value': h.value,
                'unit': h.unit,
                'comparator': h.comparator,
                'original_value': h.original_value,
                'original_unit': h.original_unit,
                'value_text': h.value_text,
                'detection_limit': h.detection_limit,
                'reference_range': h.reference_range,
                'abnormal_flags': h.abnormal_flags
            },
            h.version_no
        ) AS r
    FROM history AS h
    SEMI JOIN latest AS l
        ON l.result_id = h.result_id AND l.result_status = 'U' AND l.original_value IS NULL
    WHERE NOT h.is_latest_version AND NOT h.is_retraction AND h.original_value IS NOT NULL
    GROUP BY h.result_id
),

current_versions AS (
    SELECT
        l.* REPLACE (
            CASE WHEN f.result_id IS NULL THEN l.value ELSE f.r.value END AS value,
            CASE WHEN f.result_id IS NULL THEN l.unit ELSE f.r.unit END AS unit,
            CASE WHEN f.result_id IS NULL THEN l.comparator ELSE f.r.comparator END AS comparator,
            coalesce(l.original_value, f.r.original_value) AS original_value,
            CASE WHEN f.result_id IS NULL THEN l.original_unit ELSE f.r.original_unit END
                AS original_unit,
            CASE WHEN f.result_id IS NULL THEN l.value_text ELSE f.r.value_text END AS value_text,
            CASE WHEN f.result_id IS NULL THEN l.detection_limit ELSE f.r.detection_limit END
                AS detection_limit,
            coalesce(l.reference_range, f.r.reference_range) AS reference_range,
            coalesce(l.abnormal_flags, f.r.abnormal_flags) AS abnormal_flags,
            CASE WHEN l.result_status = 'U' THEN 'F' ELSE l.result_status END AS result_status
        )
    FROM latest AS l
    LEFT JOIN finalized AS f ON f.result_id = l.result_id
)

SELECT
    result_id,
    patient_key,
    source_system,
    source_code,
    source_text,
    source_code_system,
    loinc_code,
    analyte,
    is_mapped,
    collected_at,
    value,
    unit,
    comparator,
    original_value,
    original_unit,
    value_text,
    detection_limit,
    method,
    result_status,
    n_versions > 1 AS is_corrected,
    n_versions,
    reference_range,
    abnormal_flags,
    filler_order_number,
    sub_id,
    message_control_id,
    feed,
    file_sha256,
    position,
    sending_facility  -- HL7 MSH-4: which lab of a sending system (results per lab)
FROM current_versions
