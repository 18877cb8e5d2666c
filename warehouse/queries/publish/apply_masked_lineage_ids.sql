-- The masks of warehouse/queries/publish/masked_lineage_ids.sql applied. Result keys and ids
-- were computed in the writer's warehouse from the unmasked values, so masking merges no two
-- results: core.fct_lab_result is updated like its history, not rebuilt.
UPDATE core.fct_lab_result_history AS t SET
    filler_order_number = coalesce(mm.m[t.filler_order_number], t.filler_order_number),
    message_control_id = coalesce(mm.m[t.message_control_id], t.message_control_id)
FROM (SELECT map_from_entries(list((original, masked))) AS m FROM masked_lineage_ids) AS mm
WHERE list_has_any(map_keys(mm.m), [t.filler_order_number, t.message_control_id]);

UPDATE core.fct_lab_result AS t SET
    filler_order_number = coalesce(mm.m[t.filler_order_number], t.filler_order_number),
    message_control_id = coalesce(mm.m[t.message_control_id], t.message_control_id)
FROM (SELECT map_from_entries(list((original, masked))) AS m FROM masked_lineage_ids) AS mm
WHERE list_has_any(map_keys(mm.m), [t.filler_order_number, t.message_control_id]);

UPDATE quality.quarantine AS t SET message_control_id = mm.m[t.message_control_id]
FROM (SELECT map_from_entries(list((original, masked))) AS m FROM masked_lineage_ids) AS mm
WHERE list_contains(map_keys(mm.m), t.message_control_id);

UPDATE core.fct_dexa_scan AS t SET scan_id = mm.m[t.scan_id]
FROM (SELECT map_from_entries(list((original, masked))) AS m FROM masked_lineage_ids) AS mm
WHERE list_contains(map_keys(mm.m), t.scan_id);
