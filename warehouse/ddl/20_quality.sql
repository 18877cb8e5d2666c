-- quality: every record put aside, with the check and a readable, de-identified reason.
CREATE SEQUENCE IF NOT EXISTS quality.quarantine_id_seq;
CREATE TABLE IF NOT EXISTS quality.quarantine (
    quarantine_id   BIGINT PRIMARY KEY DEFAULT nextval('quality.quarantine_id_seq'),
    file_sha256     VARCHAR NOT NULL,
    position        VARCHAR NOT NULL,
    feed            VARCHAR NOT NULL,
    source          VARCHAR,
    check_name      VARCHAR NOT NULL,
    reason          VARCHAR NOT NULL,
    excerpt         VARCHAR,               -- de-identified: identifiers masked
    message_control_id VARCHAR,
    run_id          VARCHAR,
    quarantined_at  TIMESTAMP NOT NULL,
    released_at     TIMESTAMP,
    release_run_id  VARCHAR,
    UNIQUE (file_sha256, position, check_name)
);
CREATE TABLE IF NOT EXISTS quality.run_feed_stats (
    run_id          VARCHAR NOT NULL,
    feed            VARCHAR NOT NULL,
    n_files         INTEGER NOT NULL,
    n_received      INTEGER NOT NULL,
    n_accepted      INTEGER NOT NULL,
    n_quarantined   INTEGER NOT NULL,
    PRIMARY KEY (run_id, feed)
);
-- the records currently held (quarantined and not released): core models anti-join this
CREATE OR REPLACE VIEW quality.held_records AS
SELECT DISTINCT file_sha256, position
FROM quality.quarantine
WHERE released_at IS NULL;
