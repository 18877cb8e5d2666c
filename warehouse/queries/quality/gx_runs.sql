-- Great Expectations outcome per run: expectations evaluated and failed (trend).
SELECT
    run_id,
    count(*) AS n_expectations,
    count(*) FILTER (WHERE NOT success) AS n_failed
FROM quality.gx_results
GROUP BY run_id
