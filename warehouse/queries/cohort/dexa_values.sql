-- Cohort report: one row per patient × site × scan date: BMD (g/cm²) and T-score, the mean
-- over the sides measured that day (hips). A patient-site whose trend uses sBMD
-- (marts.feat_bmd_trend.uses_sbmd, scans from several manufacturers) uses sBMD / 1000 for
-- every scan, as the trend does; T-scores stay as the scanner reported them.
WITH
scans AS (
    SELECT patient_key, site, scan_date, bmd_g_cm2, sbmd_mg_cm2, t_score
    FROM core.fct_dexa_scan
),

trend AS (
    SELECT patient_key, site, uses_sbmd FROM marts.feat_bmd_trend
),

valued AS (
    SELECT
        s.patient_key,
        s.site,
        s.scan_date,
        CASE
            WHEN coalesce(t.uses_sbmd, false) THEN s.sbmd_mg_cm2 / 1000.0 ELSE s.bmd_g_cm2
        END AS bmd_used,
        s.t_score
    FROM scans AS s
    LEFT JOIN trend AS t USING (patient_key, site)
    WHERE list_contains($sites, s.site) AND s.scan_date IS NOT NULL
)

SELECT
    patient_key,
    site,
    scan_date,
    avg(bmd_used) AS bmd_g_cm2,
    avg(t_score) AS t_score
FROM valued
GROUP BY patient_key, site, scan_date
ORDER BY patient_key, site, scan_date
