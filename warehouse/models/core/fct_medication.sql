-- core.fct_medication: one row per medication order or dispense record (deduplicated on
-- its content when the same record arrives in several files).
WITH
staged AS (
    SELECT * FROM staging.stg_meds__medication
),

accepted AS (
    SELECT
        s.*,
        -- the record's content as JSON: every field keeps its place and NULL stays null
        -- (concat_ws skipped NULLs, so a dose of 30 and a quantity of 30 made one id); the
        -- dose unit and days supply belong to it (0.5 mL and 0.5 mg are two doses)
        md5(to_json({
            'patient_key': s.patient_key, 'record_type': s.record_type,
            'rxnorm_code': s.rxnorm_code, 'start_date': s.start_date, 'end_date': s.end_date,
            'dose_value': s.dose_value, 'dose_unit': s.dose_unit, 'frequency': s.frequency,
            'days_supply': s.days_supply, 'quantity': s.quantity
        })) AS medication_record_id,
        f.received_at,
        f.name AS landing_name
    FROM staged AS s
    JOIN raw.files AS f USING (file_sha256)  -- only files whose every chunk is staged
    ANTI JOIN quality.held_records AS h USING (file_sha256, position)
    WHERE f.status = 'parsed' AND s.patient_key IS NOT NULL
),

-- the first copy received: earliest run, then landing name, then line ('line 9' before
-- 'line 10': positions share their prefix, so the shorter is the smaller number)
deduplicated AS (
    SELECT *
    FROM accepted
    QUALIFY row_number() OVER (
        PARTITION BY medication_record_id
        ORDER BY received_at, landing_name, file_sha256, length(position), position
    ) = 1
)

SELECT
    medication_record_id,
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
    frequency_is_unread,
    start_date,
    end_date,
    days_supply,
    quantity,
    source_system,
    file_sha256,
    position
FROM deduplicated
