-- core.dim_patient: one row per pseudonymous patient seen in any accepted record.
-- Birth year and sex: the smallest value sent by any feed (feeds normally agree; a
-- deterministic choice keeps re-runs identical).
WITH
demographics AS (
    SELECT patient_key, birth_year, sex FROM staging.stg_hl7__lab_result
    UNION ALL
    SELECT patient_key, birth_year, sex FROM staging.stg_lab_csv__lab_result
    UNION ALL
    SELECT patient_key, birth_year, sex FROM staging.stg_dexa__scan
),

patients AS (
    SELECT patient_key FROM core.fct_lab_result
    UNION
    SELECT patient_key FROM core.fct_dexa_scan
    UNION
    SELECT patient_key FROM core.fct_medication
),

per_patient AS (
    SELECT
        patient_key,
        min(birth_year) AS birth_year,
        min(sex) AS sex
    FROM demographics
    WHERE patient_key IS NOT NULL
    GROUP BY patient_key
)

SELECT
    p.patient_key,
    d.birth_year,
    d.sex
FROM patients AS p
LEFT JOIN per_patient AS d USING (patient_key)
WHERE p.patient_key IS NOT NULL
