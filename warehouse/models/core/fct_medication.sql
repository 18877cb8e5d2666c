-- core.fct_medication: one row per medication order or dispense record (deduplicated on
-- its content when the same record arrives in several files).
WITH
staged AS (
    SELECT * FROM staging.stg_meds__medication
),

accepted AS (
    SELECT s.*, f.received_at
    FROM staged AS s
    JOIN raw.files AS f USING (file_sha256)  -- only files whose every chunk is staged
    ANTI JOIN quality.held_records AS h USING (file_sha256, position)
    WHERE f.status = 'parsed' AND s.patient_key IS NOT NULL
),

deduplicated AS (
    SELECT *
    FROM accepted
    QUALIFY row_number() OVER (
        PARTITION BY patient_key, record_type, rxnorm_code, start_date, end_date,
                     dose_value, frequency, quantity
        ORDER BY received_at, file_sha256, position
    ) = 1
)

SELECT
    md5(concat_ws('|', patient_key, record_type, rxnorm_code, start_date, end_date,
                  dose_value, frequency, quantity)) AS medication_record_id,
    patient_key,
    record_type,
    rxnorm_code,
    drug_name,
    ingredient,
    dose_value,
    dose_unit,
    dose_mg,
    frequency,
    doses_per_day,
    start_date,
    end_date,
    days_supply,
    quantity,
    source_system,
    file_sha256,
    position
FROM deduplicated
