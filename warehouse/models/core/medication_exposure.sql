-- core.medication_exposure: one row per patient × ingredient × exposure episode
-- (docs/medications.md). Gaps-and-islands in the style of OHDSI drug eras:
-- * supply records: per patient × ingredient, the dispenses (and records without a type) when
--   there is at least one; orders only when that patient × ingredient has no dispense at all
--   (an order states intent and usually spans the whole prescription, refills or not);
-- * records of one ingredient are ordered by (start_date, end_date); a record starts a new
--   episode when the days without supply between the running episode end and its start
--   (start_date − running_end − 1) exceed $persistence_window_days (config/features.yaml
--   medication_exposure.persistence_window_days): a gap of exactly the window is merged;
-- * days_exposed: days covered by at least one record (overlaps counted once);
-- * cumulative_dose_mg: Σ dose_mg × doses_per_day × (end_date − start_date + 1) over the
--   episode's records (each record's own days, so an early refill counts its full supply);
--   NULL when any record of the episode lacks dose_mg or doses_per_day.
WITH
fct_medication AS (
    SELECT patient_key, ingredient, record_type, start_date, end_date, dose_mg, doses_per_day
    FROM core.fct_medication
    WHERE ingredient IS NOT NULL
      AND start_date IS NOT NULL
      AND end_date IS NOT NULL
      AND end_date >= start_date
      AND ($all_patients OR patient_key IN (SELECT patient_key FROM touched_patients))
),

typed AS (
    SELECT
        *,
        coalesce(record_type, 'dispense') <> 'order' AS is_supply,
        bool_or(coalesce(record_type, 'dispense') <> 'order')
            OVER (PARTITION BY patient_key, ingredient) AS has_supply
    FROM fct_medication
),

medication AS (
    SELECT patient_key, ingredient, start_date, end_date, dose_mg, doses_per_day
    FROM typed
    WHERE is_supply OR NOT has_supply
),

with_running_end AS (
    SELECT
        *,
        max(end_date) OVER (
            PARTITION BY patient_key, ingredient
            ORDER BY start_date, end_date
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING
        ) AS running_end
    FROM medication
),

flagged AS (
    SELECT
        *,
        CASE
            WHEN running_end IS NULL THEN 1
            WHEN start_date - running_end - 1 > $persistence_window_days THEN 1
            ELSE 0
        END AS starts_episode,
        -- a covered stretch (island) breaks at any uncovered day
        CASE
            WHEN running_end IS NULL THEN 1
            WHEN start_date - running_end - 1 > 0 THEN 1
            ELSE 0
        END AS starts_island
    FROM with_running_end
),

numbered AS (
    SELECT
        *,
        sum(starts_episode) OVER (
            PARTITION BY patient_key, ingredient
            ORDER BY start_date, end_date
            ROWS UNBOUNDED PRECEDING
        ) AS episode_number,
        sum(starts_island) OVER (
            PARTITION BY patient_key, ingredient
            ORDER BY start_date, end_date
            ROWS UNBOUNDED PRECEDING
        ) AS island_number
    FROM flagged
),

islands AS (
    SELECT
        patient_key,
        ingredient,
        episode_number,
        island_number,
        max(end_date) - min(start_date) + 1 AS island_days
    FROM numbered
    GROUP BY patient_key, ingredient, episode_number, island_number
),

covered AS (
    SELECT patient_key, ingredient, episode_number, sum(island_days) AS days_exposed
    FROM islands
    GROUP BY patient_key, ingredient, episode_number
),

episodes AS (
    SELECT
        patient_key,
        ingredient,
        episode_number,
        min(start_date) AS episode_start,
        max(end_date) AS episode_end,
        count(*) AS n_records,
        sum(dose_mg * doses_per_day * (end_date - start_date + 1)) AS dose_sum_mg,
        count(*) FILTER (WHERE dose_mg IS NULL OR doses_per_day IS NULL) AS n_without_dose
    FROM numbered
    GROUP BY patient_key, ingredient, episode_number
)

SELECT
    e.patient_key,
    e.ingredient,
    CAST(e.episode_number AS INTEGER) AS episode_number,
    e.episode_start,
    e.episode_end,
    CAST(e.episode_end - e.episode_start + 1 AS INTEGER) AS episode_length_days,
    CAST(c.days_exposed AS INTEGER) AS days_exposed,
    CASE WHEN e.n_without_dose = 0 THEN CAST(e.dose_sum_mg AS DOUBLE) END AS cumulative_dose_mg,
    CAST(e.n_records AS INTEGER) AS n_records
FROM episodes AS e
JOIN covered AS c USING (patient_key, ingredient, episode_number)
ORDER BY e.patient_key, e.ingredient, e.episode_start
