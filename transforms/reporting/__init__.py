"""Report building blocks (pure Python, no Dagster): the cohort report's config, selection,
statistics, tables, figures and HTML (docs/cohort_report.md)."""
