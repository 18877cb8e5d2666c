-- Cohort report: one row per patient × site of marts.feat_bmd_trend for the report's sites.
WITH
trend AS (
    SELECT
        patient_key, site, n_scans, span_years, first_bmd_g_cm2,
        slope_g_cm2_per_year, slope_pct_per_year, uses_sbmd
    FROM marts.feat_bmd_trend
)

SELECT *
FROM trend
WHERE list_contains($sites, site)
ORDER BY patient_key, site
