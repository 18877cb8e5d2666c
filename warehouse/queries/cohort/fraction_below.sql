-- Cohort report: one row per patient × threshold, the overall window of
-- marts.feat_e2_exposure (fraction of interpolated days with E2 below the threshold).
WITH
exposure AS (
    SELECT patient_key, threshold_pg_ml, period, fraction_below, interpolated_days, below_days
    FROM marts.feat_e2_exposure
)

SELECT patient_key, threshold_pg_ml, fraction_below, interpolated_days, below_days
FROM exposure
WHERE period = 'overall'
ORDER BY patient_key, threshold_pg_ml
