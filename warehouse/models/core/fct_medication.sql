-- core.fct_medication: one row per medication order or dispense record (deduplicated on
-- its content when the same record arrives in several files).
WITH
staged AS (
    SELECT * FROM staging.stg_meds__medication
),

accepted AS (
    SELECT
        s.*,
        -- the record's normalised content as JSON: every field keeps its place and NULL stays
        -- null (concat_ws skipped NULLs, so a dose of 30 and a quantity of 30 made one id).
        -- What a re-extraction writes another way is one value: the RxNorm code as the parser
        -- reads it (199224.0 → 199224), the dose in mg (1 MG = 1 mg = 1 tablet of 1 mg, while
        -- 0.5 mL of 200 mg/mL = 100 mg stays apart from 0.5 mg), the doses per day (QD = daily;
        -- a frequency no rule reads by its text, case and spacing aside); the dose as sent
        -- (value, unit by case) only when it has no mg. Dates are the derived ones.
        md5(to_json({
            'patient_key': s.patient_key, 'record_type': s.record_type,
            'rxnorm_code': s.rxnorm_code, 'start_date': s.start_date, 'end_date': s.end_date,
            'dose_mg': round(s.dose_mg, 6),
            'dose_value': CASE WHEN s.dose_mg IS NULL THEN s.dose_value END,
            'dose_unit': CASE WHEN s.dose_mg IS NULL THEN lower(replace(s.dose_unit, ' ', '')) END,
            'doses_per_day': round(s.doses_per_day, 9),
            'frequency': CASE
                WHEN s.doses_per_day IS NULL
                    THEN lower(regexp_replace(trim(s.frequency), '[\s_-]+', ' ', 'g'))
            END,
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
    end_date_is_derived,
    days_supply_is_derived,
    quantity,
    source_system,
    file_sha256,
    position
FROM deduplicated
