-- Cohort report: the latest lab collection date and DXA scan date the snapshot holds.
SELECT
    (SELECT max(CAST(collected_at AS DATE)) FROM core.fct_lab_result) AS last_lab_date,
    (SELECT max(scan_date) FROM core.fct_dexa_scan) AS last_scan_date
