-- raw: every received file once, by content hash. Append-only.
CREATE TABLE IF NOT EXISTS raw.files (
    file_sha256     VARCHAR PRIMARY KEY,
    feed            VARCHAR NOT NULL,      -- hl7 | lab_csv | dexa | meds
    source          VARCHAR,               -- lab source / dexa vendor / NULL
    name            VARCHAR NOT NULL,      -- path relative to the landing folder, first delivery
    bytes           BIGINT NOT NULL,
    received_at     TIMESTAMP NOT NULL,
    status          VARCHAR NOT NULL,      -- received | parsed | failed
    run_id          VARCHAR,
    n_received      INTEGER,
    n_accepted      INTEGER,
    n_quarantined   INTEGER
);
-- every delivery (path × content); a second path with known content is a duplicate delivery
CREATE TABLE IF NOT EXISTS raw.deliveries (
    name            VARCHAR NOT NULL,
    file_sha256     VARCHAR NOT NULL,
    feed            VARCHAR NOT NULL,
    received_at     TIMESTAMP NOT NULL,
    is_duplicate    BOOLEAN NOT NULL,
    run_id          VARCHAR,
    PRIMARY KEY (name, file_sha256)
);
CREATE TABLE IF NOT EXISTS raw.runs (
    run_id          VARCHAR PRIMARY KEY,
    started_at      TIMESTAMP NOT NULL,
    finished_at     TIMESTAMP,
    status          VARCHAR NOT NULL,
    landing_dir     VARCHAR,
    n_files_new     INTEGER,
    parameters_json VARCHAR
);
-- patients whose inputs a run changed (drives the incremental feature refresh); a row stays
-- pending (refreshed_at NULL) until a feature build has covered it, whichever run that is
CREATE TABLE IF NOT EXISTS raw.touched_patients (
    run_id          VARCHAR NOT NULL,
    patient_key     VARCHAR NOT NULL,
    refreshed_at    TIMESTAMP,
    PRIMARY KEY (run_id, patient_key)
);
-- what the feature marts (and core, their input: model 'core') were last built with:
-- params_json holds their parameters, the SHA-256 of the model SQL and, for a mart, core's
-- state (a change of any forces a full rebuild)
CREATE TABLE IF NOT EXISTS raw.feature_state (
    model           VARCHAR PRIMARY KEY,
    params_json     VARCHAR NOT NULL,
    built_at        TIMESTAMP NOT NULL,
    run_id          VARCHAR
);
