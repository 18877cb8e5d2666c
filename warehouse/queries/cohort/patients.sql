-- Cohort report: one row per patient (core.dim_patient) with the attributes the cohort
-- criteria of config/cohorts.yaml use. Read from the published snapshot; never rendered.
WITH
patients AS (
    SELECT patient_key, birth_year, sex FROM core.dim_patient
),

episodes AS (
    SELECT patient_key, days_exposed
    FROM core.medication_exposure
    WHERE ingredient = $anastrozole_ingredient
),

e2_overall AS (
    SELECT patient_key, first_date, followup_days
    FROM marts.feat_e2_exposure
    WHERE period = 'overall'
),

anastrozole AS (
    SELECT patient_key, sum(days_exposed) AS anastrozole_days
    FROM episodes
    GROUP BY patient_key
),

-- the overall window's dates and follow-up do not depend on the threshold
e2_followup AS (
    SELECT patient_key, min(first_date) AS first_e2_date, max(followup_days) AS e2_followup_days
    FROM e2_overall
    GROUP BY patient_key
)

SELECT
    p.patient_key,
    p.sex,
    p.birth_year,
    e.first_e2_date,
    e.e2_followup_days,
    year(e.first_e2_date) - p.birth_year AS age_at_first_e2,
    coalesce(a.anastrozole_days, 0) AS anastrozole_days
FROM patients AS p
LEFT JOIN anastrozole AS a USING (patient_key)
LEFT JOIN e2_followup AS e USING (patient_key)
ORDER BY p.patient_key
