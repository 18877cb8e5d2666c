-- core.ref_omop_concept: one row per (domain, source code) → OMOP concept id, from
-- config/omop_concepts.csv. Codes without a row map to concept 0 ("no matching concept").
SELECT
    CAST(domain AS VARCHAR) AS domain,
    CAST(source_code AS VARCHAR) AS source_code,
    CAST(concept_id AS INTEGER) AS concept_id,
    CAST(concept_name AS VARCHAR) AS concept_name
FROM read_csv($omop_concepts_csv, header = true, all_varchar = true)
