-- The ids a sender chose, in the snapshot: OBR-3 filler order numbers, MSH-10 message control
-- ids, DXA scan ids. They are lineage, but some senders build them from the patient's MRN
-- (`LGZKXXR5`, `LGZKXXR5_20200323151748`, `LGZKXXR520200323`), so every id of a record that
-- holds, in any case, one of that record's own patient's identifiers (temp table
-- patient_identifiers, NFC lower-case, 4 characters or more: warehouse/publish.py) is listed
-- here per patient with its mask (mask_identifiers_in: those identifiers → ▒▒▒). Matching a
-- record's own patient only keeps an accession number that happens to hold another patient's
-- MRN as sent. Only the listed ids reach Python.
CREATE OR REPLACE TEMP TABLE masked_lineage_ids AS
WITH ids AS (
    SELECT patient_key, filler_order_number AS original FROM core.fct_lab_result_history
    UNION SELECT patient_key, message_control_id FROM core.fct_lab_result_history
    UNION SELECT patient_key, scan_id FROM core.fct_dexa_scan
),

holding AS (
    SELECT i.patient_key, i.original, list(k.identifier) AS identifiers
    FROM ids AS i
    JOIN patient_identifiers AS k ON k.patient_key = i.patient_key
    WHERE i.original IS NOT NULL AND contains(lower(nfc_normalize(i.original)), k.identifier)
    GROUP BY i.patient_key, i.original
)

SELECT patient_key, original, mask_identifiers_in(original, identifiers) AS masked
FROM holding;

-- the results whose order number is masked, with their re-keyed id (see apply_…): computed
-- once per result, not once per version
CREATE OR REPLACE TEMP TABLE rekeyed_results AS
SELECT result_id, keyed_result_id(result_id) AS new_id
FROM (
    SELECT DISTINCT h.result_id
    FROM core.fct_lab_result_history AS h
    SEMI JOIN masked_lineage_ids AS m
        ON m.patient_key = h.patient_key AND m.original = h.filler_order_number
);
