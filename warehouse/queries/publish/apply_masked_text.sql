-- The masks of warehouse/queries/publish/masked_text.sql applied: one update per table; a row
-- changes only when one of its texts has a mask. core.fct_lab_result is then rebuilt from the
-- masked history by its own model (warehouse/publish.py).
UPDATE core.fct_lab_result_history AS t SET
    source_text = coalesce(mm.m[t.source_text], t.source_text),
    analyte = CASE WHEN t.is_mapped THEN t.analyte ELSE coalesce(mm.m[t.analyte], t.analyte) END,
    original_value = CASE
        WHEN t.value IS NULL THEN coalesce(mm.m[t.original_value], t.original_value)
        ELSE t.original_value
    END,
    value_text = coalesce(mm.m[t.value_text], t.value_text),
    method = coalesce(mm.m[t.method], t.method),
    reference_range = coalesce(mm.m[t.reference_range], t.reference_range),
    original_unit = coalesce(mm.m[t.original_unit], t.original_unit),
    unit = CASE WHEN t.is_mapped THEN t.unit ELSE coalesce(mm.m[t.unit], t.unit) END
FROM (SELECT map_from_entries(list((original, masked))) AS m FROM masked_text) AS mm
WHERE list_has_any(
    map_keys(mm.m),
    [t.source_text, t.analyte, t.original_value, t.value_text, t.method, t.reference_range,
     t.original_unit, t.unit]
);

UPDATE core.fct_medication AS t SET
    drug_name = coalesce(mm.m[t.drug_name], t.drug_name),
    frequency = coalesce(mm.m[t.frequency], t.frequency),
    dose_unit = coalesce(mm.m[t.dose_unit], t.dose_unit)
FROM (SELECT map_from_entries(list((original, masked))) AS m FROM masked_text) AS mm
WHERE list_has_any(map_keys(mm.m), [t.drug_name, t.frequency, t.dose_unit]);

UPDATE quality.quarantine AS t SET excerpt = coalesce(mm.m[t.excerpt], t.excerpt)
FROM (SELECT map_from_entries(list((original, masked))) AS m FROM masked_text) AS mm
WHERE list_contains(map_keys(mm.m), t.excerpt);
