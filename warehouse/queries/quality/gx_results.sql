-- Great Expectations results of a run, one row per expectation (quality.gx_results).
SELECT
    table_name,
    expectation_no,
    expectation_type,
    column_name,
    row_condition,
    arguments_json,
    success,
    element_count,
    unexpected_count,
    unexpected_percent
FROM quality.gx_results
WHERE run_id = $run_id
ORDER BY table_name, expectation_no
