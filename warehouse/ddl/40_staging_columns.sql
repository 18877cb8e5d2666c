-- Columns added to staged tables after a warehouse was created (the staged tables are created
-- from their Pandera models only when missing: warehouse/ingest.py ensure_schema).
-- Rows staged before frequency_is_unread existed had a frequency a rule read, or none: a text
-- no rule read was put aside then (docs/medications.md).
ALTER TABLE IF EXISTS staging.stg_meds__medication
    ADD COLUMN IF NOT EXISTS frequency_is_unread BOOLEAN DEFAULT false;
-- Rows staged before the two *_is_derived flags existed do not say what was sent: NULL
-- (unknown), which omop.drug_exposure shows as NULL days_supply and verbatim_end_date;
-- re-staging the file sets them from its cells (docs/operations.md, Upgrading).
ALTER TABLE IF EXISTS staging.stg_meds__medication
    ADD COLUMN IF NOT EXISTS end_date_is_derived BOOLEAN;
ALTER TABLE IF EXISTS staging.stg_meds__medication
    ADD COLUMN IF NOT EXISTS days_supply_is_derived BOOLEAN;
