-- Cohort report: what each feature mart was built with (parameters and model hash).
SELECT model, params_json FROM raw.feature_state ORDER BY model
