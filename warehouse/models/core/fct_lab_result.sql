-- core.fct_lab_result: one row per lab result, its current version (the latest version in
-- core.fct_lab_result_history), catalogued or not. Results whose latest version is a
-- retraction (D / W) are not current and are absent here (they stay in the history).
WITH
history AS (
    SELECT * FROM core.fct_lab_result_history
),

current_versions AS (
    SELECT *
    FROM history
    WHERE is_latest_version AND NOT is_retraction
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
