-- marts.feat_bmd_trend: one row per patient × site (lumbar_spine, total_hip, femoral_neck).
-- BMD change and OLS slope of BMD on years since the first scan (docs/features.md).
-- A patient-site scanned on more than one manufacturer uses sBMD (mg/cm² / 1000) for every
-- scan. OLS: slope = Sxy / Sxx from one-pass aggregates, SE = sqrt(SSE / (n - 2) / Sxx) with
-- SSE = Syy - Sxy² / Sxx, or summed from the residuals in a second pass where that cancels;
-- slope and SE do not depend on the origin of x, so x is counted from a fixed date rather
-- than from each patient's first scan. The per-date means of both BMD and
-- sBMD are taken before the manufacturer check, so the check joins dates, not scan rows.
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
-- every patient-site with a row; its manufacturers are those of rows that carry a BMD or an
-- sBMD (a row with neither, e.g. T-score only, is no scan and changes no manufacturer)
site_manufacturers AS (
    SELECT
        patient_key,
        site,
        list_sort(coalesce(
            list(manufacturer) FILTER (WHERE manufacturer IS NOT NULL AND has_value), []
        )) AS manufacturer_list,
        len(manufacturer_list) AS n_manufacturers,
        n_manufacturers > 1 AS uses_sbmd
    FROM (
        SELECT DISTINCT
            patient_key,
            site,
            manufacturer,
            bmd_g_cm2 IS NOT NULL OR sbmd_g_cm2 IS NOT NULL AS has_value
        FROM scan_rows
    )
    GROUP BY patient_key, site
),

-- one row per scan date: means over the sides (hips) of the measured BMD and of the sBMD
side_means AS (
    SELECT
        patient_key,
        site,
        scan_date,
        avg(bmd_g_cm2) AS bmd_g_cm2,
        avg(sbmd_g_cm2) AS sbmd_g_cm2,
        bool_or(sbmd_is_approximate AND sbmd_g_cm2 IS NOT NULL) AS sbmd_is_approximate
    FROM scan_rows
    GROUP BY patient_key, site, scan_date
),

-- the value that counts: sBMD for a patient-site scanned on more than one manufacturer
scan_dates AS (
    SELECT
        d.patient_key,
        d.site,
        d.scan_date,
        CASE WHEN m.uses_sbmd THEN d.sbmd_g_cm2 ELSE d.bmd_g_cm2 END AS bmd_g_cm2,
        m.uses_sbmd AND d.sbmd_is_approximate AS sbmd_is_approximate,
        date_diff('day', DATE '2000-01-01', d.scan_date) / 365.25 AS x_years
    FROM side_means AS d
    JOIN site_manufacturers AS m ON m.patient_key = d.patient_key AND m.site = d.site
    WHERE CASE WHEN m.uses_sbmd THEN d.sbmd_g_cm2 ELSE d.bmd_g_cm2 END IS NOT NULL
),

fits AS (
    SELECT
        patient_key,
        site,
        count(*) AS n_scan_dates,
        min(scan_date) AS first_scan_date,
        max(scan_date) AS last_scan_date,
        arg_min(bmd_g_cm2, scan_date) AS first_bmd_g_cm2,
        arg_max(bmd_g_cm2, scan_date) AS last_bmd_g_cm2,
        bool_or(sbmd_is_approximate) AS sbmd_is_approximate,
        regr_sxx(bmd_g_cm2, x_years) AS sxx,
        regr_sxy(bmd_g_cm2, x_years) AS sxy,
        regr_syy(bmd_g_cm2, x_years) AS syy,
        regr_avgx(bmd_g_cm2, x_years) AS mean_x,
        regr_avgy(bmd_g_cm2, x_years) AS mean_y
    FROM scan_dates
    GROUP BY patient_key, site
),

-- residual sum of squares from the residuals themselves, for the fits whose one-pass
-- Syy - Sxy² / Sxx is within 1e-6 of Syy: there it cancels (points on or next to the line)
-- and leaves noise of 1e-10 that moves with the order of DuckDB's parallel aggregation.
-- Elsewhere the one-pass value is exact to ~1e-10 relative, and the second pass over every
-- fit would cost a fifth of the mart
residuals AS (
    SELECT
        d.patient_key,
        d.site,
        sum(pow((d.bmd_g_cm2 - f.mean_y) - f.sxy / f.sxx * (d.x_years - f.mean_x), 2)) AS sse
    FROM scan_dates AS d
    JOIN fits AS f ON f.patient_key = d.patient_key AND f.site = d.site
    WHERE f.n_scan_dates > 2 AND f.sxx > 0
        AND f.syy - f.sxy * f.sxy / f.sxx <= 1e-6 * f.syy
    GROUP BY d.patient_key, d.site
),

trends AS (
    SELECT
        m.patient_key,
        m.site,
        coalesce(f.n_scan_dates, 0) AS n_scans,
        f.first_scan_date,
        f.last_scan_date,
        (f.last_scan_date - f.first_scan_date) / 365.25 AS span_years,
        f.first_bmd_g_cm2,
        f.last_bmd_g_cm2,
        CASE WHEN n_scans >= 2 THEN f.last_bmd_g_cm2 - f.first_bmd_g_cm2 END AS change_g_cm2,
        l.lsc_g_cm2,
        -- beyond the LSC by more than the rounding of the subtraction (1e-9 g/cm², a millionth
        -- of DXA's 0.001 resolution): 0.900 - 0.875 is 0.025000000000000022 in binary doubles,
        -- a change equal to a 0.025 LSC, not beyond it
        abs(change_g_cm2) - l.lsc_g_cm2 > 1e-9 AS exceeds_lsc,
        CASE
            WHEN n_scans < 2 THEN 'fewer_than_2_scans'
            WHEN span_years < $min_span_years THEN 'span_below_minimum'
        END AS reason,
        CASE WHEN reason IS NULL THEN f.sxy / f.sxx END AS slope_g_cm2_per_year,
        CASE
            WHEN reason IS NULL AND n_scans > 2
                THEN sqrt(coalesce(r.sse, f.syy - f.sxy * f.sxy / f.sxx) / (n_scans - 2) / f.sxx)
        END AS slope_se_g_cm2_per_year,
        100.0 * slope_g_cm2_per_year / f.first_bmd_g_cm2 AS slope_pct_per_year,
        m.uses_sbmd,
        coalesce(f.sbmd_is_approximate, false) AS sbmd_is_approximate,
        m.n_manufacturers,
        nullif(array_to_string(m.manufacturer_list, ','), '') AS manufacturers
    FROM site_manufacturers AS m
    JOIN site_lsc AS l ON l.site = m.site
    LEFT JOIN fits AS f ON f.patient_key = m.patient_key AND f.site = m.site
    LEFT JOIN residuals AS r ON r.patient_key = m.patient_key AND r.site = m.site
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
