-- omop.measurement: OMOP CDM v5.4 MEASUREMENT, one row per core.fct_lab_result row, and one
-- per BMD, T-score and Z-score of a core.fct_dexa_scan row at the three feature sites (a hip
-- side is a row of its own; the CDM has no laterality field).
-- A censored "<5" is value_as_number 5 with operator_concept_id 4171756 ('<').
-- Concept ids come from core.ref_omop_concept (config/omop_concepts.csv); 0 = no mapping.
WITH
persons AS (
    -- the patients omop.person holds (known birth year)
    SELECT patient_key FROM core.dim_patient WHERE birth_year IS NOT NULL
),

results AS (
    SELECT
        *,
        -- the lab's reference range ('10-40', '<39', '>5'; '' where the pattern fails), in the
        -- unit it was sent in: the unit of value_as_number only when the value was not converted
        regexp_extract(
            reference_range, '^\s*(\d+(?:\.\d+)?)\s*-\s*(\d+(?:\.\d+)?)\s*$', ['low', 'high']
        ) AS between_range,
        regexp_extract(
            reference_range, '^\s*([<>])=?\s*(\d+(?:\.\d+)?)\s*$', ['side', 'bound']
        ) AS open_range,
        lower(original_unit) = lower(unit) AS range_in_value_unit
    FROM core.fct_lab_result SEMI JOIN persons USING (patient_key)
),

concepts AS (
    SELECT * FROM core.ref_omop_concept
),

-- DXA LOINC codes per site and measure (DOMAIN.md; the femoral neck is the femur's)
dxa_codes (site, measure, loinc_code, unit) AS (
    VALUES
        ('lumbar_spine', 'bmd', '24966-4', 'g/cm2'),
        ('lumbar_spine', 't_score', '38267-1', '{T-score}'),
        ('lumbar_spine', 'z_score', '85394-5', '{Z-score}'),
        ('total_hip', 'bmd', '38261-4', 'g/cm2'),
        ('total_hip', 't_score', '38264-8', '{T-score}'),
        ('total_hip', 'z_score', '80933-5', '{Z-score}'),
        ('femoral_neck', 'bmd', '24701-5', 'g/cm2'),
        ('femoral_neck', 't_score', '38263-0', '{T-score}'),
        ('femoral_neck', 'z_score', '80934-3', '{Z-score}')
),

dxa_values AS (
    SELECT d.patient_key, d.scan_date, d.site, d.side, v.measure, v.value
    FROM core.fct_dexa_scan AS d
    SEMI JOIN persons USING (patient_key)
    CROSS JOIN LATERAL (
        VALUES ('bmd', d.bmd_g_cm2), ('t_score', d.t_score), ('z_score', d.z_score)
    ) AS v (measure, value)
    WHERE v.value IS NOT NULL
),

dxa_rows AS (
    SELECT
        CAST(('0x' || left(md5(concat_ws('|', 'dxa', d.patient_key, d.scan_date, d.site,
                                          coalesce(d.side, ''), d.measure)), 15)) AS BIGINT)
            AS measurement_id,
        CAST(('0x' || left(md5(d.patient_key), 15)) AS BIGINT) AS person_id,
        coalesce(mc.concept_id, 0) AS measurement_concept_id,
        d.scan_date AS measurement_date,
        32817 AS measurement_type_concept_id,  -- 32817 | EHR
        4172703 AS operator_concept_id,  -- =
        d.value AS value_as_number,
        coalesce(uc.concept_id, 0) AS unit_concept_id,
        c.loinc_code AS measurement_source_value,
        coalesce(mc.concept_id, 0) AS measurement_source_concept_id,
        c.unit AS unit_source_value,
        CAST(d.value AS VARCHAR) AS value_source_value
    FROM dxa_values AS d
    JOIN dxa_codes AS c ON c.site = d.site AND c.measure = d.measure
    LEFT JOIN concepts AS mc ON mc.domain = 'measurement' AND mc.source_code = c.loinc_code
    LEFT JOIN concepts AS uc ON uc.domain = 'unit' AND uc.source_code = c.unit
),

lab_rows AS (
    SELECT
        CAST(('0x' || left(md5(r.result_id), 15)) AS BIGINT) AS measurement_id,
        CAST(('0x' || left(md5(r.patient_key), 15)) AS BIGINT) AS person_id,
        -- the value's concept: a molar LOINC whose value is stored in a mass unit is a mass
        -- concentration (measurement_stored); its own concept is the source concept
        coalesce(sc.concept_id, mc.concept_id, 0) AS measurement_concept_id,
        CAST(r.collected_at AS DATE) AS measurement_date,
        r.collected_at AS measurement_datetime,
        CAST(NULL AS VARCHAR) AS measurement_time,
        32817 AS measurement_type_concept_id,  -- 32817 | EHR
        CASE r.comparator
            WHEN '<' THEN 4171756   -- <
            WHEN '<=' THEN 4171754  -- <=
            WHEN '>=' THEN 4171755  -- >=
            WHEN '>' THEN 4172704   -- >
            ELSE CASE WHEN r.value IS NOT NULL THEN 4172703 END  -- =
        END AS operator_concept_id,
        r.value AS value_as_number,
        CAST(NULL AS INTEGER) AS value_as_concept_id,
        coalesce(uc.concept_id, 0) AS unit_concept_id,
        CASE WHEN r.range_in_value_unit THEN coalesce(
            try_cast(r.between_range.low AS DOUBLE),
            CASE WHEN r.open_range.side = '>' THEN try_cast(r.open_range.bound AS DOUBLE) END
        ) END AS range_low,
        CASE WHEN r.range_in_value_unit THEN coalesce(
            try_cast(r.between_range.high AS DOUBLE),
            CASE WHEN r.open_range.side = '<' THEN try_cast(r.open_range.bound AS DOUBLE) END
        ) END AS range_high,
        CAST(NULL AS BIGINT) AS provider_id,
        CAST(NULL AS BIGINT) AS visit_occurrence_id,
        CAST(NULL AS BIGINT) AS visit_detail_id,
        coalesce(r.loinc_code, r.source_code) AS measurement_source_value,
        coalesce(mc.concept_id, 0) AS measurement_source_concept_id,
        r.original_unit AS unit_source_value,  -- as sent (value_as_number is in unit_concept_id)
        CAST(NULL AS INTEGER) AS unit_source_concept_id,
        r.original_value AS value_source_value,
        CAST(NULL AS BIGINT) AS measurement_event_id,
        CAST(NULL AS INTEGER) AS meas_event_field_concept_id
    FROM results AS r
    LEFT JOIN concepts AS mc ON mc.domain = 'measurement' AND mc.source_code = r.loinc_code
    LEFT JOIN concepts AS sc ON sc.domain = 'measurement_stored' AND sc.source_code = r.loinc_code
    LEFT JOIN concepts AS uc ON uc.domain = 'unit' AND uc.source_code = r.unit
)

-- the lab rows give the column order and types; a DXA row leaves the others NULL
SELECT * FROM lab_rows
UNION ALL BY NAME
SELECT * FROM dxa_rows
