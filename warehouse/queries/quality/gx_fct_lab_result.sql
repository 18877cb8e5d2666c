-- Frame validated by the GX suite of core.fct_lab_result (one row per current result).
-- Derived columns turn row-level rules into plain column expectations:
-- patient_in_dim (referential integrity with core.dim_patient), days_after_run_date
-- (> 0: collected after the run date), years_after_birth_year (< 0: before birth).
WITH
results AS (
    SELECT * FROM core.fct_lab_result
),

patients AS (
    -- one row per key even if the table breaks its contract (its own suite says so)
    SELECT patient_key, min(birth_year) AS birth_year FROM core.dim_patient GROUP BY patient_key
)

SELECT
    r.result_id,
    r.patient_key,
    r.feed,
    r.file_sha256,
    r.position,
    r.analyte,
    r.unit,
    r.value,
    r.comparator,
    r.result_status,
    r.collected_at,
    p.patient_key IS NOT NULL AS patient_in_dim,
    date_diff('day', CAST($as_of AS DATE), CAST(r.collected_at AS DATE)) AS days_after_run_date,
    year(r.collected_at) - p.birth_year AS years_after_birth_year
FROM results AS r
LEFT JOIN patients AS p ON p.patient_key = r.patient_key
