-- The snapshot's free text, masked as the quality reports mask text (mask_identifiers:
-- identifier patterns, dates, and every word that is a known patient's name or identifier).
-- A source can put anything in a text result, a comment-like cell or a drug name
-- ("Called Doe, John (MRN0042)"): such cells reach analysts only masked. Codes, numbers,
-- catalogued names and lineage are left alone. The function runs once per distinct text.
CREATE OR REPLACE TEMP TABLE masked_text AS
WITH texts AS (
    -- every current result is a version in the history, so the history's texts cover both
    SELECT source_text AS original FROM core.fct_lab_result_history
    UNION SELECT analyte FROM core.fct_lab_result_history WHERE NOT is_mapped
    UNION SELECT original_value FROM core.fct_lab_result_history WHERE value IS NULL
    UNION SELECT value_text FROM core.fct_lab_result_history
    UNION SELECT method FROM core.fct_lab_result_history
    UNION SELECT reference_range FROM core.fct_lab_result_history
    UNION SELECT original_unit FROM core.fct_lab_result_history
    UNION SELECT unit FROM core.fct_lab_result_history WHERE NOT is_mapped
    UNION SELECT drug_name FROM core.fct_medication
    UNION SELECT frequency FROM core.fct_medication
    UNION SELECT dose_unit FROM core.fct_medication
    UNION SELECT excerpt FROM quality.quarantine
),

masked AS (
    SELECT original, mask_identifiers(original) AS masked FROM texts WHERE original IS NOT NULL
)

SELECT * FROM masked WHERE masked IS DISTINCT FROM original;
