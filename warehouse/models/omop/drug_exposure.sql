-- omop.drug_exposure: one row per core.fct_medication record.
WITH
persons AS (
    -- the patients omop.person holds (known birth year)
    SELECT patient_key FROM core.dim_patient WHERE birth_year IS NOT NULL
),

meds AS (
    SELECT * FROM core.fct_medication SEMI JOIN persons USING (patient_key)
),

concepts AS (
    SELECT * FROM core.ref_omop_concept WHERE domain = 'drug'
)

SELECT
    CAST(('0x' || left(md5(m.medication_record_id), 15)) AS BIGINT) AS drug_exposure_id,
    CAST(('0x' || left(md5(m.patient_key), 15)) AS BIGINT) AS person_id,
    coalesce(c.concept_id, 0) AS drug_concept_id,
    m.start_date AS drug_exposure_start_date,
    CAST(m.start_date AS TIMESTAMP) AS drug_exposure_start_datetime,
    coalesce(m.end_date, m.start_date) AS drug_exposure_end_date,
    CAST(coalesce(m.end_date, m.start_date) AS TIMESTAMP) AS drug_exposure_end_datetime,
    -- the end date as the source sent it (not one derived from the days supply)
    -- (NULL flag: staged before it existed, unknown)
    CASE WHEN NOT m.end_date_is_derived THEN m.end_date END AS verbatim_end_date,
    CASE m.record_type
        WHEN 'dispense' THEN 32825  -- EHR dispensing record
        WHEN 'order' THEN 32838     -- EHR prescription
        ELSE 32817                  -- EHR
    END AS drug_type_concept_id,
    CAST(NULL AS VARCHAR) AS stop_reason,
    CAST(NULL AS INTEGER) AS refills,
    m.quantity,
    -- as the prescription or dispensing record specified it (CDM v5.4), not end − start + 1
    CASE WHEN NOT m.days_supply_is_derived THEN m.days_supply END AS days_supply,
    m.frequency AS sig,
    0 AS route_concept_id,
    CAST(NULL AS VARCHAR) AS lot_number,
    CAST(NULL AS BIGINT) AS provider_id,
    CAST(NULL AS BIGINT) AS visit_occurrence_id,
    CAST(NULL AS BIGINT) AS visit_detail_id,
    m.rxnorm_code AS drug_source_value,
    0 AS drug_source_concept_id,
    CAST(NULL AS VARCHAR) AS route_source_value,
    m.dose_unit AS dose_unit_source_value
FROM meds AS m
LEFT JOIN concepts AS c ON c.source_code = m.rxnorm_code
