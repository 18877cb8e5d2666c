-- marts.feat_e2_exposure: one row per patient × threshold × period ('overall' or 'YYYY').
-- Time with E2 below each threshold by day-by-day linear interpolation between consecutive
-- result dates (Rosendaal), with the conventions of docs/features.md.
--
-- No day is expanded: the days of a linear interval d0 … d1-1 whose value
-- v0 + (v1 - v0) * k / n is below T form a prefix (rising), a suffix (falling) or all/none
-- (flat), because that double-precision expression is monotone in k. The boundary is found
-- arithmetically, then corrected by re-evaluating the exact expression at the boundary (±1)
-- and verified; an interval whose boundary does not verify (slopes of a few ulps per day
-- only) is counted day by day over a list of at most $max_gap_days elements.
-- Calendar years: each interval is split at 1 January (few pieces); every count of a piece
-- is an intersection of day ranges [lo, hi). Anastrozole: intersection with the patient's
-- merged exposure episodes, also as day ranges.
--
-- Parameters (transforms/feature_config.py ← config/features.yaml): $e2_loinc_codes,
-- $e2_result_statuses, $thresholds_pg_ml (DOUBLE[]), $max_gap_days, $censored_fraction,
-- $anastrozole_ingredient; $all_patients + temp.touched_patients (warehouse/runner.py).
WITH
-- import CTEs ---------------------------------------------------------------------------------
e2_results AS (
    SELECT
        patient_key,
        CAST(collected_at AS DATE) AS result_date,
        value,
        coalesce(comparator IN ('<', '<='), false) AS is_censored
    FROM core.fct_lab_result
    -- $e2_loinc_codes (config/features.yaml e2_exposure.loinc_codes):
    --   2243-4  | Estradiol, mass                      | serum | pg/mL
    --   14715-7 | Estradiol, molar (stored in pg/mL)   | serum
    --   72873-3 | Estradiol, LC-MS/MS high-sensitivity | serum
    --   83096-8 | Estradiol, immunoassay               | serum | pg/mL
    WHERE list_contains($e2_loinc_codes, loinc_code)
        -- $e2_result_statuses: F | final, C | corrected (retracted results are not current)
        AND list_contains($e2_result_statuses, result_status)
        AND value IS NOT NULL
        AND collected_at IS NOT NULL
        AND ($all_patients OR patient_key IN (SELECT patient_key FROM touched_patients))
),

anastrozole_episodes AS (
    SELECT patient_key, episode_start, episode_end
    FROM core.medication_exposure
    WHERE ingredient = $anastrozole_ingredient
        AND episode_start IS NOT NULL
        AND episode_end >= episode_start
        AND ($all_patients OR patient_key IN (SELECT patient_key FROM touched_patients))
),

thresholds AS (
    SELECT unnest($thresholds_pg_ml) AS threshold_pg_ml
),

-- logic CTEs ----------------------------------------------------------------------------------
-- 1.-2. one value per date: mean of the interpolation values (<L → L × fraction); censored
-- only when all results of the date are, then with the mean of their limits
result_dates AS (
    SELECT
        patient_key,
        result_date,
        avg(CASE WHEN is_censored THEN value * $censored_fraction ELSE value END) AS value_pg_ml,
        CASE WHEN bool_and(is_censored) THEN avg(value) END AS censor_limit,
        count(*) AS n_results,
        count_if(is_censored) AS n_censored
    FROM e2_results
    GROUP BY patient_key, result_date
),

-- overlapping or adjacent episodes merged so that no day is counted twice; [lo, hi) ranges
episode_starts AS (
    SELECT
        *,
        CASE
            WHEN episode_start <= max(episode_end) OVER (
                PARTITION BY patient_key ORDER BY episode_start, episode_end
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
            ) + 1 THEN 0
            ELSE 1
        END AS starts_island
    FROM anastrozole_episodes
),

episode_islands AS (
    SELECT
        *,
        sum(starts_island) OVER (
            PARTITION BY patient_key ORDER BY episode_start, episode_end
            ROWS UNBOUNDED PRECEDING
        ) AS island
    FROM episode_starts
),

patient_episodes AS (
    SELECT patient_key, list({'lo': lo, 'hi': hi}) AS episodes
    FROM (
        SELECT patient_key, min(episode_start) AS lo, max(episode_end) + 1 AS hi
        FROM episode_islands
        GROUP BY patient_key, island
    )
    GROUP BY patient_key
),

-- 3. consecutive dates d0 < d1 (n days); the last date starts no interval (d1 NULL)
intervals AS (
    SELECT
        patient_key,
        result_date AS d0,
        lead(result_date) OVER w AS d1,
        value_pg_ml AS v0,
        lead(value_pg_ml) OVER w AS v1,
        censor_limit AS limit0,
        lead(censor_limit) OVER w AS limit1,
        n_results,
        n_censored
    FROM result_dates
    WINDOW w AS (PARTITION BY patient_key ORDER BY result_date)
),

-- calendar-year pieces [piece_lo, piece_hi) of each interval (the last date gives one empty
-- piece, so that every year holding a result date has a piece), with their anastrozole days
pieces AS (
    SELECT
        i.*,
        CAST(i.d1 - i.d0 AS INTEGER) AS n,
        i.v1 - i.v0 AS dv,
        i.v1 >= i.v0 AS rising,
        e.episodes,
        unnest(range(year(i.d0), year(coalesce(i.d1 - 1, i.d0)) + 1)) AS period_year
    FROM intervals AS i
    LEFT JOIN patient_episodes AS e ON e.patient_key = i.patient_key
),

piece_ranges AS (
    SELECT
        *,
        greatest(d0, make_date(period_year, 1, 1)) AS piece_lo,
        least(coalesce(d1, d0), make_date(period_year + 1, 1, 1)) AS piece_hi
    FROM pieces
),

piece_days AS (
    SELECT
        *,
        piece_hi - piece_lo AS covered_days,
        period_year = year(d0) AS holds_d0,
        CASE
            WHEN episodes IS NULL THEN 0
            ELSE list_sum(list_transform(episodes, lambda e:
                greatest(0, least(e.hi, piece_hi) - greatest(e.lo, piece_lo))))
        END AS anastrozole_days
    FROM piece_ranges
),

-- threshold-free statistics per patient × year and, in the same pass, per patient (period_year
-- NULL = overall): the result dates of the year (each date is the start of exactly one piece in
-- its own year), gap days, other covered days, anastrozole days
period_stats AS (
    SELECT
        patient_key,
        period_year,
        min(CASE WHEN holds_d0 THEN d0 END) AS first_date,
        max(CASE WHEN holds_d0 THEN d0 END) AS last_date,
        sum(CASE WHEN holds_d0 THEN n_results ELSE 0 END) AS n_results,
        count(CASE WHEN holds_d0 THEN 1 END) AS n_dates,
        sum(CASE WHEN holds_d0 THEN n_censored ELSE 0 END) AS n_censored,
        sum(CASE WHEN holds_d0 THEN v0 END) AS sum_e2_pg_ml,
        min(CASE WHEN holds_d0 THEN v0 END) AS min_e2_pg_ml,
        max(CASE WHEN holds_d0 THEN v0 END) AS max_e2_pg_ml,
        sum(CASE WHEN n > $max_gap_days THEN covered_days ELSE 0 END) AS gap_days,
        sum(CASE WHEN n <= $max_gap_days THEN covered_days ELSE 0 END) AS classed_days,
        sum(anastrozole_days) AS anastrozole_days
    FROM piece_days
    GROUP BY GROUPING SETS ((patient_key, period_year), (patient_key))
),

-- pieces of intervals that are not gaps, per threshold: indeterminate or interpolated
classified AS (
    SELECT
        p.patient_key,
        p.period_year,
        p.d0,
        p.v0,
        p.n,
        p.dv,
        p.rising,
        p.episodes,
        p.piece_lo,
        p.piece_hi,
        p.covered_days,
        t.threshold_pg_ml,
        coalesce(p.limit0 > t.threshold_pg_ml, false)
            OR coalesce(p.limit1 > t.threshold_pg_ml, false) AS is_indeterminate,
        -- far wider than the rounding of v0 + dv * k / n
        1e-9 * (abs(p.v0) + abs(p.dv) + abs(t.threshold_pg_ml)) AS margin
    FROM piece_days AS p
    CROSS JOIN thresholds AS t
    WHERE p.n <= $max_gap_days AND p.covered_days > 0
        -- only thresholds the piece can add days to: indeterminate, or some day possibly
        -- below T (not when both ends are at or above T by the margin)
        AND (is_indeterminate OR least(p.v0, p.v0 + p.dv) - margin < t.threshold_pg_ml)
),

-- b0 = first estimate of the boundary b, the length of the interval's first run: below days
-- are [0, b) when rising or flat, [b, n) when falling. An interval whose ends are both below
-- T by the margin has all of its days below: b = n (rising) or 0 (falling) without the
-- estimate.
estimated AS (
    SELECT
        *,
        CASE
            WHEN is_indeterminate THEN 0
            WHEN greatest(v0, v0 + dv) + margin < threshold_pg_ml THEN CASE WHEN rising THEN n ELSE 0 END
        END AS b_sure,
        CASE WHEN b_sure IS NOT NULL THEN b_sure ELSE greatest(0, least(n, CASE
            WHEN dv = 0 THEN CASE WHEN v0 < threshold_pg_ml THEN n ELSE 0 END
            WHEN dv > 0 THEN CAST(ceil(greatest(-1, least(n + 1,
                (threshold_pg_ml - v0) * n / dv))) AS INTEGER)
            ELSE CAST(floor(greatest(-1, least(n + 1,
                (threshold_pg_ml - v0) * n / dv))) AS INTEGER) + 1
        END)) END AS b0
    FROM classified
),

-- one correction step: day k is in the first run when (value(k) < T) = rising
corrected AS (
    SELECT
        *,
        CASE
            WHEN b_sure IS NOT NULL THEN b_sure
            WHEN b0 < n AND (v0 + dv * b0 / n < threshold_pg_ml) = rising THEN b0 + 1
            WHEN b0 > 0 AND (v0 + dv * (b0 - 1) / n < threshold_pg_ml) <> rising THEN b0 - 1
            ELSE b0
        END AS b1
    FROM estimated
),

-- verified boundary: a day-by-day count over list(range(n)) only when the check fails
boundaries AS (
    SELECT
        *,
        CAST(CASE
            WHEN b_sure IS NOT NULL THEN b_sure
            WHEN (b1 = 0 OR (v0 + dv * (b1 - 1) / n < threshold_pg_ml) = rising)
                AND (b1 = n OR (v0 + dv * b1 / n < threshold_pg_ml) <> rising) THEN b1
            WHEN rising THEN len(list_filter(range(n), lambda k: v0 + dv * k / n < threshold_pg_ml))
            ELSE n - len(list_filter(range(n), lambda k: v0 + dv * k / n < threshold_pg_ml))
        END AS INTEGER) AS b
    FROM corrected
),

-- the below days as an absolute range [below_lo, below_hi), clipped to the piece
below_ranges AS (
    SELECT
        *,
        greatest(piece_lo, d0 + CASE WHEN rising THEN 0 ELSE b END) AS below_lo,
        least(piece_hi, d0 + CASE
            WHEN is_indeterminate THEN 0
            WHEN rising THEN b
            ELSE n
        END) AS below_hi
    FROM boundaries
),

-- threshold-dependent day counts per patient × threshold × year and overall (year NULL); only
-- pieces that add some (the others add zeros)
threshold_counts AS (
    SELECT
        patient_key,
        threshold_pg_ml,
        period_year,
        sum(CASE WHEN is_indeterminate THEN covered_days ELSE 0 END) AS indeterminate_days,
        sum(greatest(0, below_hi - below_lo)) AS below_days,
        sum(CASE
            WHEN episodes IS NULL OR below_hi <= below_lo THEN 0
            ELSE list_sum(list_transform(episodes, lambda e:
                greatest(0, least(e.hi, below_hi) - greatest(e.lo, below_lo))))
        END) AS anastrozole_below_days
    FROM below_ranges
    WHERE is_indeterminate OR below_hi > below_lo
    GROUP BY GROUPING SETS ((patient_key, threshold_pg_ml, period_year), (patient_key, threshold_pg_ml))
),

-- a year without a result date (only covered days) has NULL statistics and 0 counts
periods AS (
    SELECT
        s.patient_key,
        t.threshold_pg_ml,
        coalesce(CAST(s.period_year AS VARCHAR), 'overall') AS period,
        s.first_date,
        s.last_date,
        s.n_results,
        s.n_dates,
        s.n_censored,
        s.sum_e2_pg_ml,
        s.min_e2_pg_ml,
        s.max_e2_pg_ml,
        s.classed_days - coalesce(c.indeterminate_days, 0) AS interpolated_days,
        coalesce(c.below_days, 0) AS below_days,
        s.gap_days,
        coalesce(c.indeterminate_days, 0) AS indeterminate_days,
        s.anastrozole_days,
        coalesce(c.anastrozole_below_days, 0) AS anastrozole_below_days
    FROM period_stats AS s
    CROSS JOIN thresholds AS t
    LEFT JOIN threshold_counts AS c
        ON c.patient_key = s.patient_key
        AND c.threshold_pg_ml = t.threshold_pg_ml
        AND c.period_year IS NOT DISTINCT FROM s.period_year
)

-- final select --------------------------------------------------------------------------------
SELECT
    patient_key,
    threshold_pg_ml,
    period,
    first_date,
    last_date,
    CAST(n_results AS BIGINT) AS n_results,
    CAST(n_dates AS BIGINT) AS n_dates,
    CAST(n_censored AS BIGINT) AS n_censored,
    sum_e2_pg_ml / nullif(n_dates, 0) AS mean_e2_pg_ml,
    min_e2_pg_ml,
    max_e2_pg_ml,
    CAST(interpolated_days + gap_days + indeterminate_days AS BIGINT) AS followup_days,
    CAST(interpolated_days AS BIGINT) AS interpolated_days,
    CAST(below_days AS BIGINT) AS below_days,
    CAST(gap_days AS BIGINT) AS gap_days,
    CAST(indeterminate_days AS BIGINT) AS indeterminate_days,
    below_days / nullif(interpolated_days, 0) AS fraction_below,
    CAST(anastrozole_days AS BIGINT) AS anastrozole_days,
    CAST(anastrozole_below_days AS BIGINT) AS anastrozole_below_days
FROM periods
