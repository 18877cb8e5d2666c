-- The ids a sender chose, in the snapshot: OBR-3 filler order numbers, MSH-10 message control
-- ids, DXA scan ids. They are lineage, but some senders build them from the patient's MRN
-- (`LGZKXXR5`, `LGZKXXR5_20200323151748`), so every value with a word that is a known patient
-- identifier (temp table known_identifier_words, filled by warehouse/publish.py) is listed
-- here with its mask (mask_known_identifiers: those words → ▒▒▒). Words are compared as
-- letter-and-digit runs and as their letter runs and digit runs (`ABC12345` holds `12345`),
-- lower-cased, as masking.known_words spells them. Only the listed values reach Python.
CREATE OR REPLACE TEMP TABLE masked_lineage_ids AS
WITH ids AS (
    SELECT filler_order_number AS original FROM core.fct_lab_result_history
    UNION SELECT message_control_id FROM core.fct_lab_result_history
    UNION SELECT message_control_id FROM quality.quarantine
    UNION SELECT scan_id FROM core.fct_dexa_scan
),

words AS (
    SELECT
        original,
        unnest(list_distinct(list_concat(
            regexp_extract_all(lower(original), '[\pL\pN]+'),
            regexp_extract_all(lower(original), '\pL+|\pN+')
        ))) AS word
    FROM ids
    WHERE original IS NOT NULL
),

holding AS (
    SELECT DISTINCT w.original
    FROM words AS w
    SEMI JOIN known_identifier_words AS k ON k.word = w.word
)

SELECT original, mask_known_identifiers(original) AS masked
FROM holding;
