-- Frame validated by the GX suite of core.fct_dexa_scan (one row per patient × scan date ×
-- site × side); derived columns as in gx_fct_lab_result.sql.
WITH
scans AS (
    SELECT * FROM core.fct_dexa_scan
),

patients AS (
    -- one row per key even if the table breaks its contract (its own suite says so)
    SELECT patient_key, min(birth_year) AS birth_year FROM core.dim_patient GROUP BY patient_key
)

SELECT
    s.patient_key,
    s.scan_date,
    s.site,
    coalesce(s.side, '') AS side,
    s.bmd_g_cm2,
    -- $bmd_range_sites: the sites held to 0.2-2.5 g/cm² (schemas/validate.py BMD_RANGE_SITES)
    CASE WHEN list_contains($bmd_range_sites, s.site) THEN s.bmd_g_cm2 END
        AS main_site_bmd_g_cm2,
    s.t_score,
    s.z_score,
    s.file_sha256,
    p.patient_key IS NOT NULL AS patient_in_dim,
    date_diff('day', CAST($as_of AS DATE), s.scan_date) AS days_after_run_date,
    year(s.scan_date) - p.birth_year AS years_after_birth_year
FROM scans AS s
LEFT JOIN patients AS p ON p.patient_key = s.patient_key
