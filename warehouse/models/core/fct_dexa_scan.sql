-- core.fct_dexa_scan: one row per patient × scan date × site × side (DXA), from every
-- vendor export; the same measurement exported twice is kept once (the latest file).
WITH
staged AS (
    SELECT * FROM staging.stg_dexa__scan
),

accepted AS (
    SELECT s.*, f.received_at, f.name AS landing_name
    FROM staged AS s
    JOIN raw.files AS f USING (file_sha256)  -- only files whose every chunk is staged
    ANTI JOIN quality.held_records AS h USING (file_sha256, position)
    WHERE f.status = 'parsed' AND s.patient_key IS NOT NULL AND s.scan_date IS NOT NULL AND s.site IS NOT NULL
),

-- the last copy received: latest run, then landing name, then line ('line 10' after
-- 'line 9': positions share their prefix, so the longer is the larger number)
deduplicated AS (
    SELECT *
    FROM accepted
    QUALIFY row_number() OVER (
        PARTITION BY patient_key, scan_date, site, coalesce(side, '')
        ORDER BY received_at DESC, landing_name DESC, file_sha256 DESC,
                 length(position) DESC, position DESC
    ) = 1
)

SELECT
    patient_key,
    scan_id,
    scan_date,
    site,
    side,
    region,
    bmd_g_cm2,
    bmd_l2_l4_g_cm2,
    sbmd_mg_cm2,
    sbmd_is_approximate,
    t_score,
    z_score,
    manufacturer,
    model,
    serial,
    software_version,
    source_system,
    file_sha256,
    position
FROM deduplicated
