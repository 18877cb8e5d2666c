-- The masks of warehouse/queries/publish/masked_lineage_ids.sql applied, one join per column.
-- A result's id is md5 of its key, which holds the filler order number: with every other part
-- of the key in the same row, md5 would let a reader test guesses of a masked number. So the
-- id of a result whose number is masked is re-keyed first (keyed_result_id: HMAC with the
-- pseudonymization key; the same in every snapshot); the writer's warehouse keeps the
-- originals. Keys were computed in the writer, so masking merges no two results.
UPDATE core.fct_lab_result_history AS t SET result_id = keyed_result_id(t.result_id)
FROM masked_lineage_ids AS m WHERE t.filler_order_number = m.original;
UPDATE core.fct_lab_result AS t SET result_id = keyed_result_id(t.result_id)
FROM masked_lineage_ids AS m WHERE t.filler_order_number = m.original;

UPDATE core.fct_lab_result_history AS t SET filler_order_number = m.masked
FROM masked_lineage_ids AS m WHERE t.filler_order_number = m.original;
UPDATE core.fct_lab_result_history AS t SET message_control_id = m.masked
FROM masked_lineage_ids AS m WHERE t.message_control_id = m.original;
UPDATE core.fct_lab_result AS t SET filler_order_number = m.masked
FROM masked_lineage_ids AS m WHERE t.filler_order_number = m.original;
UPDATE core.fct_lab_result AS t SET message_control_id = m.masked
FROM masked_lineage_ids AS m WHERE t.message_control_id = m.original;
UPDATE quality.quarantine AS t SET message_control_id = m.masked
FROM masked_lineage_ids AS m WHERE t.message_control_id = m.original;
UPDATE core.fct_dexa_scan AS t SET scan_id = m.masked
FROM masked_lineage_ids AS m WHERE t.scan_id = m.original;
