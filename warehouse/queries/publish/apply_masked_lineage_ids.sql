-- The masks of warehouse/queries/publish/masked_lineage_ids.sql applied. A result's id is md5
-- of its key, which holds the filler order number: with every other part of the key in the
-- same row, md5 would let a reader test guesses of a masked number. So the id of a result
-- whose number is masked is re-keyed (keyed_result_id: HMAC with the pseudonymization key;
-- the same in every snapshot). Keys were computed in the writer, so masking merges no two
-- results; core.fct_lab_result is then rebuilt from this history (warehouse/publish.py).
UPDATE core.fct_lab_result_history AS t SET
    result_id = CASE
        WHEN t.filler_order_number IN (SELECT original FROM masked_lineage_ids)
            THEN keyed_result_id(t.result_id)
        ELSE t.result_id
    END,
    filler_order_number = coalesce(
        (SELECT masked FROM masked_lineage_ids WHERE original = t.filler_order_number),
        t.filler_order_number
    ),
    message_control_id = coalesce(
        (SELECT masked FROM masked_lineage_ids WHERE original = t.message_control_id),
        t.message_control_id
    )
WHERE t.filler_order_number IN (SELECT original FROM masked_lineage_ids)
    OR t.message_control_id IN (SELECT original FROM masked_lineage_ids);

UPDATE quality.quarantine AS t SET message_control_id = m.masked
FROM masked_lineage_ids AS m WHERE t.message_control_id = m.original;

UPDATE core.fct_dexa_scan AS t SET scan_id = m.masked
FROM masked_lineage_ids AS m WHERE t.scan_id = m.original;
