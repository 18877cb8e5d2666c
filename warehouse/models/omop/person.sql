-- omop.person: OMOP CDM v5.4 PERSON, one row per core.dim_patient patient with a known birth
-- year (year_of_birth is required by the CDM; a patient seen only in the medication feed has
-- none until a lab or DXA record brings it, and is left out of every omop view until then).
-- person_id is the first 15 hex digits (60 bits) of md5(patient_key), the same in any tool
-- and DuckDB version (every omop *_id is made so from its row's key); person_source_value
-- is the pseudonymous key itself (never an MRN).
SELECT
    CAST(('0x' || left(md5(patient_key), 15)) AS BIGINT) AS person_id,
    CASE sex WHEN 'M' THEN 8507 WHEN 'F' THEN 8532 ELSE 0 END AS gender_concept_id,  -- 8507 MALE | 8532 FEMALE
    birth_year AS year_of_birth,
    CAST(NULL AS INTEGER) AS month_of_birth,
    CAST(NULL AS INTEGER) AS day_of_birth,
    CAST(NULL AS TIMESTAMP) AS birth_datetime,
    0 AS race_concept_id,
    0 AS ethnicity_concept_id,
    CAST(NULL AS BIGINT) AS location_id,
    CAST(NULL AS BIGINT) AS provider_id,
    CAST(NULL AS BIGINT) AS care_site_id,
    patient_key AS person_source_value,
    sex AS gender_source_value,
    0 AS gender_source_concept_id,
    CAST(NULL AS VARCHAR) AS race_source_value,  -- no feed sends race or ethnicity
    0 AS race_source_concept_id,
    CAST(NULL AS VARCHAR) AS ethnicity_source_value,
    0 AS ethnicity_source_concept_id
FROM core.dim_patient
WHERE birth_year IS NOT NULL
