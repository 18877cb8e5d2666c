-- The masks of warehouse/queries/publish/masked_lineage_ids.sql applied. A result's id is md5
-- of its key, which holds the filler order number: with every other part of the key in the
-- same row, md5 would let a reader test guesses of a masked number. So the id of a result
-- whose number is masked is re-keyed (rekeyed_results: HMAC with the pseudonymization key;
-- the same in every snapshot while the patient's identifiers are). Keys were computed in
-- the writer, so masking merges no two results; core.fct_lab_result is then rebuilt from
-- this history (warehouse/publish.py). A quarantined record has no patient: its message id
-- takes the mask the message's loaded records gave it.
UPDATE core.fct_lab_result_history AS t SET result_id = r.new_id
FROM rekeyed_results AS r WHERE t.result_id = r.result_id;

UPDATE core.fct_lab_result_history AS t SET
    filler_order_number = coalesce(
        (SELECT masked FROM masked_lineage_ids
         WHERE patient_key = t.patient_key AND original = t.filler_order_number),
        t.filler_order_number
    ),
    message_control_id = coalesce(
        (SELECT masked FROM masked_lineage_ids
         WHERE patient_key = t.patient_key AND original = t.message_control_id),
        t.message_control_id
    )
WHERE t.patient_key IN (SELECT patient_key FROM masked_lineage_ids);

UPDATE quality.quarantine AS t SET message_control_id = m.masked
FROM (SELECT original, min(masked) AS masked FROM masked_lineage_ids GROUP BY original) AS m
WHERE t.message_control_id = m.original;

UPDATE core.fct_dexa_scan AS t SET scan_id = m.masked
FROM masked_lineage_ids AS m WHERE t.patient_key = m.patient_key AND t.scan_id = m.original;
