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
    -- the deduplication key as JSON: every field keeps its place and NULL stays null
    -- (concat_ws skipped NULLs, so a dose of 30 and a quantity of 30 made one id)
    md5(to_json({
        'patient_key': patient_key, 'record_type': record_type, 'rxnorm_code': rxnorm_code,
        'start_date': start_date, 'end_date': end_date, 'dose_value': dose_value,
        'frequency': frequency, 'quantity': quantity
    })) AS medication_record_id,
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
