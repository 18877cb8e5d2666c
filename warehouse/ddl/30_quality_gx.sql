-- quality.gx_results: one row per run × table × Great Expectations expectation
-- (warehouse/quality_gx.py). Counts and the expectation's own arguments only: never the
-- unexpected values (result format SUMMARY with no partial lists, stripped before storing).
CREATE TABLE IF NOT EXISTS quality.gx_results (
    run_id              VARCHAR NOT NULL,
    evaluated_at        TIMESTAMP NOT NULL,
    table_name          VARCHAR NOT NULL,
    expectation_no      INTEGER NOT NULL,   -- order within the table's suite
    expectation_type    VARCHAR NOT NULL,
    column_name         VARCHAR,            -- column or comma-joined columns
    row_condition       VARCHAR,            -- e.g. analyte × unit of a plausible range
    arguments_json      VARCHAR,            -- min/max/value set/mostly from config
    success             BOOLEAN NOT NULL,
    element_count       BIGINT,
    unexpected_count    BIGINT,
    unexpected_percent  DOUBLE,
    PRIMARY KEY (run_id, table_name, expectation_no)
);
