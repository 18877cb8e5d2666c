-- Frame validated by the GX suite of core.dim_patient (one row per patient);
-- birth_years_after_run_date > 0 means a birth year after the run date.
SELECT
    patient_key,
    birth_year,
    sex,
    birth_year - year(CAST($as_of AS DATE)) AS birth_years_after_run_date
FROM core.dim_patient
