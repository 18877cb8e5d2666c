-- Frame validated by the GX suite of core.fct_medication (one row per medication record);
-- derived columns as in gx_fct_lab_result.sql, on the start date.
WITH
medication AS (
    SELECT * FROM core.fct_medication
),

patients AS (
    -- one row per key even if the table breaks its contract (its own suite says so)
    SELECT patient_key, min(birth_year) AS birth_year FROM core.dim_patient GROUP BY patient_key
)

SELECT
    m.medication_record_id,
    m.patient_key,
    m.record_type,
    m.start_date,
    m.dose_value,
    m.frequency_is_unread,
    m.file_sha256,
    p.patient_key IS NOT NULL AS patient_in_dim,
    date_diff('day', CAST($as_of AS DATE), m.start_date) AS days_after_run_date,
    year(m.start_date) - p.birth_year AS years_after_birth_year
FROM medication AS m
LEFT JOIN patients AS p ON p.patient_key = m.patient_key
