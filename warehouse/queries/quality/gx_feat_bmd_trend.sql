-- Frame validated by the GX suite of marts.feat_bmd_trend (one row per patient × site).
WITH
trend AS (
    SELECT * FROM marts.feat_bmd_trend
),

patients AS (
    -- one row per key even if the table breaks its contract (its own suite says so)
    SELECT DISTINCT patient_key FROM core.dim_patient
)

SELECT
    t.patient_key,
    t.site,
    t.n_scans,
    t.span_years,
    t.first_bmd_g_cm2,
    t.last_bmd_g_cm2,
    p.patient_key IS NOT NULL AS patient_in_dim,
    date_diff('day', CAST($as_of AS DATE), t.last_scan_date) AS days_after_run_date
FROM trend AS t
LEFT JOIN patients AS p ON p.patient_key = t.patient_key
