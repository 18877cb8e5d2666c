-- marts.feat_bmd_trend: one row per patient × site (lumbar_spine, total_hip, femoral_neck).
-- BMD change and OLS slope of BMD on years since the first scan (docs/features.md).
-- A patient-site scanned on more than one manufacturer uses sBMD (mg/cm² / 1000) for every
-- scan. OLS from one-pass aggregates: slope = Sxy / Sxx, SE = sqrt(SSE / (n - 2) / Sxx) with
-- SSE = Syy - Sxy² / Sxx; slope and SE do not depend on the origin of x, so x is counted from
-- a fixed date rather than from each patient's first scan.
-- Two aggregations: per scan date (means over the sides of both BMD and sBMD, the date's
-- lowest and highest manufacturer), then per patient-site, where the fit is taken on both
-- values at once (aggregates skip NULLs, so each fit sees exactly the dates that have its
-- value) and the manufacturer check picks one. Only the patient-sites with more than one
-- manufacturer go back to their scan rows, for the exact sorted list of manufacturers.
--
-- Parameters (transforms/feature_config.py ← config/features.yaml): $bmd_sites and
-- $lsc_g_cm2 (parallel lists: site, least significant change in g/cm²), $min_span_years;
-- $all_patients + temp.touched_patients (warehouse/runner.py).
WITH
-- import CTEs ---------------------------------------------------------------------------------
site_lsc AS (
    -- sites: lumbar_spine | L1-L4 | total_hip | mean of sides | femoral_neck | mean of sides
    SELECT unnest($bmd_sites) AS site, unnest($lsc_g_cm2) AS lsc_g_cm2
),

scan_rows AS NOT MATERIALIZED (
    SELECT
        s.patient_key,
        s.site,
        s.scan_date,
        s.bmd_g_cm2,
        s.sbmd_mg_cm2 / 1000.0 AS sbmd_g_cm2,
        coalesce(s.sbmd_is_approximate, false) AS sbmd_is_approximate,
        s.manufacturer
    FROM core.fct_dexa_scan AS s
    SEMI JOIN site_lsc AS l ON l.site = s.site
    WHERE s.scan_date IS NOT NULL
        AND ($all_patients OR s.patient_key IN (SELECT patient_key FROM touched_patients))
),

-- logic CTEs ----------------------------------------------------------------------------------
-- one row per scan date: means over the sides (hips) of the measured BMD and of the sBMD
side_means AS (
    SELECT
        patient_key,
        site,
        scan_date,
        avg(bmd_g_cm2) AS bmd_g_cm2,
        avg(sbmd_g_cm2) AS sbmd_g_cm2,
        bool_or(sbmd_is_approximate AND sbmd_g_cm2 IS NOT NULL) AS sbmd_is_approximate,
        min(manufacturer) AS manufacturer_lo,
        max(manufacturer) AS manufacturer_hi,
        date_diff('day', DATE '2000-01-01', scan_date) / 365.25 AS x_years
    FROM scan_rows
    GROUP BY patient_key, site, scan_date
),

-- per patient-site: both fits; a second manufacturer anywhere means sBMD for every scan
fits AS (
    SELECT
        patient_key,
        site,
        min(manufacturer_lo) AS site_manufacturer_lo,
        max(manufacturer_hi) AS site_manufacturer_hi,
        coalesce(site_manufacturer_lo <> site_manufacturer_hi, false) AS uses_sbmd,
        count(bmd_g_cm2) AS n_bmd,
        min(CASE WHEN bmd_g_cm2 IS NOT NULL THEN scan_date END) AS first_bmd_date,
        max(CASE WHEN bmd_g_cm2 IS NOT NULL THEN scan_date END) AS last_bmd_date,
        arg_min(bmd_g_cm2, scan_date) AS first_bmd,
        arg_max(bmd_g_cm2, scan_date) AS last_bmd,
        regr_sxx(bmd_g_cm2, x_years) AS sxx_bmd,
        regr_sxy(bmd_g_cm2, x_years) AS sxy_bmd,
        regr_syy(bmd_g_cm2, x_years) AS syy_bmd,
        count(sbmd_g_cm2) AS n_sbmd,
        min(CASE WHEN sbmd_g_cm2 IS NOT NULL THEN scan_date END) AS first_sbmd_date,
        max(CASE WHEN sbmd_g_cm2 IS NOT NULL THEN scan_date END) AS last_sbmd_date,
        arg_min(sbmd_g_cm2, scan_date) AS first_sbmd,
        arg_max(sbmd_g_cm2, scan_date) AS last_sbmd,
        regr_sxx(sbmd_g_cm2, x_years) AS sxx_sbmd,
        regr_sxy(sbmd_g_cm2, x_years) AS sxy_sbmd,
        regr_syy(sbmd_g_cm2, x_years) AS syy_sbmd,
        bool_or(sbmd_is_approximate) AS sbmd_is_approximate
    FROM side_means
    GROUP BY patient_key, site
),

-- more than one manufacturer: the distinct list (rare; from the scan rows of those sites)
multi_manufacturers AS (
    SELECT s.patient_key, s.site, list_sort(list(DISTINCT s.manufacturer)) AS manufacturer_list
    FROM scan_rows AS s
    SEMI JOIN (SELECT patient_key, site FROM fits WHERE uses_sbmd) AS f ON f.patient_key = s.patient_key AND f.site = s.site
    WHERE s.manufacturer IS NOT NULL
    GROUP BY s.patient_key, s.site
),

-- the value that counts: sBMD for a patient-site scanned on more than one manufacturer
chosen AS (
    SELECT
        f.patient_key,
        f.site,
        f.uses_sbmd,
        CASE
            WHEN f.uses_sbmd THEN mm.manufacturer_list
            WHEN f.site_manufacturer_lo IS NOT NULL THEN [f.site_manufacturer_lo]
            ELSE []
        END AS manufacturer_list,
        CASE WHEN f.uses_sbmd THEN f.n_sbmd ELSE f.n_bmd END AS n_scans,
        CASE WHEN f.uses_sbmd THEN f.first_sbmd_date ELSE f.first_bmd_date END AS first_scan_date,
        CASE WHEN f.uses_sbmd THEN f.last_sbmd_date ELSE f.last_bmd_date END AS last_scan_date,
        CASE WHEN f.uses_sbmd THEN f.first_sbmd ELSE f.first_bmd END AS first_bmd_g_cm2,
        CASE WHEN f.uses_sbmd THEN f.last_sbmd ELSE f.last_bmd END AS last_bmd_g_cm2,
        CASE WHEN f.uses_sbmd THEN f.sxx_sbmd ELSE f.sxx_bmd END AS sxx,
        CASE WHEN f.uses_sbmd THEN f.sxy_sbmd ELSE f.sxy_bmd END AS sxy,
        CASE WHEN f.uses_sbmd THEN f.syy_sbmd ELSE f.syy_bmd END AS syy,
        f.uses_sbmd AND coalesce(f.sbmd_is_approximate, false) AS sbmd_is_approximate
    FROM fits AS f
    LEFT JOIN multi_manufacturers AS mm ON mm.patient_key = f.patient_key AND mm.site = f.site
),

trends AS (
    SELECT
        f.patient_key,
        f.site,
        f.n_scans,
        f.first_scan_date,
        f.last_scan_date,
        (last_scan_date - first_scan_date) / 365.25 AS span_years,
        f.first_bmd_g_cm2,
        f.last_bmd_g_cm2,
        CASE WHEN n_scans >= 2 THEN f.last_bmd_g_cm2 - f.first_bmd_g_cm2 END AS change_g_cm2,
        l.lsc_g_cm2,
        abs(change_g_cm2) > l.lsc_g_cm2 AS exceeds_lsc,
        CASE
            WHEN n_scans < 2 THEN 'fewer_than_2_scans'
            WHEN span_years < $min_span_years THEN 'span_below_minimum'
        END AS reason,
        CASE WHEN reason IS NULL THEN f.sxy / f.sxx END AS slope_g_cm2_per_year,
        CASE
            WHEN reason IS NULL AND n_scans > 2
                THEN sqrt(greatest(0.0, f.syy - f.sxy * f.sxy / f.sxx) / (n_scans - 2) / f.sxx)
        END AS slope_se_g_cm2_per_year,
        100.0 * slope_g_cm2_per_year / f.first_bmd_g_cm2 AS slope_pct_per_year,
        f.uses_sbmd,
        f.sbmd_is_approximate,
        len(f.manufacturer_list) AS n_manufacturers,
        nullif(array_to_string(f.manufacturer_list, ','), '') AS manufacturers
    FROM chosen AS f
    JOIN site_lsc AS l ON l.site = f.site
)

-- final select --------------------------------------------------------------------------------
SELECT
    patient_key,
    site,
    CAST(n_scans AS BIGINT) AS n_scans,
    first_scan_date,
    last_scan_date,
    span_years,
    first_bmd_g_cm2,
    last_bmd_g_cm2,
    change_g_cm2,
    lsc_g_cm2,
    exceeds_lsc,
    slope_g_cm2_per_year,
    slope_se_g_cm2_per_year,
    slope_pct_per_year,
    reason,
    uses_sbmd,
    sbmd_is_approximate,
    CAST(n_manufacturers AS BIGINT) AS n_manufacturers,
    manufacturers
FROM trends
