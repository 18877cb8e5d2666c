-- The ids a sender chose, in the snapshot: OBR-3 filler order numbers, MSH-10 message control
-- ids, DXA scan ids. They are lineage, but some senders build them from the patient's MRN
-- (`LGZKXXR5`, `LGZKXXR5_20200323151748`), so every value with a word that holds a known
-- patient identifier (temp table known_identifier_words, filled by warehouse/publish.py) is
-- listed here with its mask (mask_identifier_words: those words → ▒▒▒). The rule is
-- masking.holds_identifier's: a word is a run of letters and digits, compared NFC and
-- lower-case, whole or by its letter runs and digit runs (`ABC12345` holds `12345`). Only the
-- listed values reach Python.
CREATE OR REPLACE TEMP TABLE masked_lineage_ids AS
WITH ids AS (
    SELECT filler_order_number AS original FROM core.fct_lab_result_history
    UNION SELECT message_control_id FROM core.fct_lab_result_history
    UNION SELECT message_control_id FROM quality.quarantine
    UNION SELECT scan_id FROM core.fct_dexa_scan
),

words AS (
    SELECT original, unnest(regexp_extract_all(lower(nfc_normalize(original)), '[\pL\pN]+'))
        AS word
    FROM ids
    WHERE original IS NOT NULL
),

candidates AS (
    SELECT original, word FROM words
    UNION ALL
    SELECT original, unnest(regexp_extract_all(word, '\pL+|\pN+')) FROM words
),

holding AS (
    SELECT DISTINCT c.original
    FROM candidates AS c
    SEMI JOIN known_identifier_words AS k ON k.word = c.word
)

SELECT original, mask_identifier_words(original) AS masked
FROM holding;
