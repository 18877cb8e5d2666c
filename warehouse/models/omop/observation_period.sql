-- omop.observation_period: one row per person, from the first to the last dated record
-- (lab collection, DXA scan, medication start/end), for the persons of omop.person.
WITH
persons AS (
    -- the patients omop.person holds (known birth year)
    SELECT patient_key FROM core.dim_patient WHERE birth_year IS NOT NULL
),

dated AS (
    SELECT patient_key, CAST(collected_at AS DATE) AS d FROM core.fct_lab_result WHERE collected_at IS NOT NULL
    UNION ALL
    SELECT patient_key, scan_date FROM core.fct_dexa_scan
    UNION ALL
    SELECT patient_key, start_date FROM core.fct_medication WHERE start_date IS NOT NULL
    UNION ALL
    SELECT patient_key, end_date FROM core.fct_medication WHERE end_date IS NOT NULL
)

SELECT
    CAST(('0x' || left(md5(patient_key), 15)) AS BIGINT) AS observation_period_id,
    CAST(('0x' || left(md5(patient_key), 15)) AS BIGINT) AS person_id,
    min(d) AS observation_period_start_date,
    max(d) AS observation_period_end_date,
    32817 AS period_type_concept_id  -- 32817 | EHR
FROM dated
SEMI JOIN persons USING (patient_key)
GROUP BY patient_key
