-- Cohort report: one row per patient × analyte × collection date of the report's labs
-- (core.fct_lab_result.analyte names of config/analytes.csv, e.g. testosterone_total =
-- 2986-8 | Testosterone total | serum). Current final/corrected results with a value; a
-- censored "<L" result counts as L × $censored_fraction (as in the E2 features); several
-- results on one date become their mean.
WITH
results AS (
    SELECT patient_key, analyte, collected_at, value, comparator, result_status
    FROM core.fct_lab_result
),

selected AS (
    SELECT
        patient_key,
        analyte,
        CAST(collected_at AS DATE) AS result_date,
        coalesce(comparator IN ('<', '<='), false) AS is_censored,
        CASE WHEN comparator IN ('<', '<=') THEN value * $censored_fraction ELSE value END
            AS value_used
    FROM results
    WHERE list_contains($analytes, analyte)
      AND list_contains($result_statuses, result_status)
      AND value IS NOT NULL
      AND collected_at IS NOT NULL
)

SELECT
    patient_key,
    analyte,
    result_date,
    avg(value_used) AS value,
    bool_and(is_censored) AS is_censored,
    count(*) AS n_results
FROM selected
GROUP BY patient_key, analyte, result_date
ORDER BY patient_key, analyte, result_date
