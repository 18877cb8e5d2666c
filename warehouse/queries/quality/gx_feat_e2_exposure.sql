-- Frame validated by the GX suite of marts.feat_e2_exposure (one row per patient ×
-- threshold × period).
WITH
exposure AS (
    SELECT * FROM marts.feat_e2_exposure
),

patients AS (
    -- one row per key even if the table breaks its contract (its own suite says so)
    SELECT DISTINCT patient_key FROM core.dim_patient
)

SELECT
    e.patient_key,
    e.threshold_pg_ml,
    e.period,
    e.fraction_below,
    e.followup_days,
    p.patient_key IS NOT NULL AS patient_in_dim,
    date_diff('day', CAST($as_of AS DATE), e.last_date) AS days_after_run_date
FROM exposure AS e
LEFT JOIN patients AS p ON p.patient_key = e.patient_key
