"""The whole Dagster graph on a generated cohort, checked against the generator's truth.

One module-scoped run (a generated cohort, the pipeline, a second identical run) serves every
test here, so the suite stays fast.
"""

from __future__ import annotations

import csv
import math

import duckdb
import pytest

pytestmark = pytest.mark.integration

NAMESPACE = "NORTH_CLINIC"


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _con(home):
    return duckdb.connect(str(home.warehouse), read_only=True)


def test_counts_per_feed_equal_truth(pipeline):
    truth = {r["feed"]: r for r in _read_csv(pipeline["truth"] / "feed_counts.csv")}
    con = _con(pipeline["home"])
    got = {
        feed: (f, r, a, q)
        for feed, f, r, a, q in con.execute(
            "SELECT feed, n_files, n_received, n_accepted, n_quarantined "
            "FROM quality.run_feed_stats WHERE run_id = $r",
            {"r": pipeline["run_id"]},
        ).fetchall()
    }
    con.close()
    for feed, t in truth.items():
        expected = (
            int(t["files"]),
            int(t["records_received"]),
            int(t["records_accepted"]),
            int(t["records_quarantined"]),
        )
        assert got.get(feed) == expected, feed
        assert expected[1] == expected[2] + expected[3]


def test_quarantine_reasons_equal_truth(pipeline):
    expected = {
        (r["feed"], r["check_name"]): int(r["count"])
        for r in _read_csv(pipeline["truth"] / "quarantine_expected.csv")
        if int(r["count"])
    }
    con = _con(pipeline["home"])
    got = dict(
        ((feed, check), n)
        for feed, check, n in con.execute(
            "SELECT feed, check_name, count(*) FROM quality.quarantine GROUP BY ALL"
        ).fetchall()
    )
    con.close()
    assert got == expected


def test_second_run_changes_nothing(pipeline):
    first, second = pipeline["sums"]
    assert first == second
    con = _con(pipeline["home"])
    n = con.execute(
        "SELECT count(*) FROM quality.run_feed_stats WHERE run_id = $r",
        {"r": pipeline["second_run_id"]},
    ).fetchone()[0]
    con.close()
    assert n == 0


def test_published_runs_show_the_publishing_run_finished(pipeline):
    home = pipeline["home"]
    sql = "SELECT run_id, status, finished_at FROM raw.runs ORDER BY started_at"
    writer = duckdb.connect(str(home.warehouse), read_only=True)
    published = duckdb.connect(str(home.published), read_only=True)
    try:
        recorded, shown = writer.execute(sql).fetchall(), published.execute(sql).fetchall()
    finally:
        writer.close()
        published.close()
    runs = [pipeline["run_id"], pipeline["second_run_id"]]
    assert [(r, s) for r, s, _ in recorded] == [(r, "success") for r in runs]
    assert shown == recorded  # the snapshot's own run too: 'success' at the same time


def test_published_gx_results_include_the_publishing_run(pipeline):
    # GX validates before the publish, so analysts see the run's own expectations
    con = duckdb.connect(str(pipeline["home"].published), read_only=True)
    try:
        runs = con.execute(
            "SELECT run_id, count(*) FROM quality.gx_results GROUP BY run_id ORDER BY run_id"
        ).fetchall()
    finally:
        con.close()
    counts = dict(runs)
    assert set(counts) == {pipeline["run_id"], pipeline["second_run_id"]}
    assert counts[pipeline["run_id"]] == counts[pipeline["second_run_id"]] > 0


def _num(s):
    return None if s in ("", None) else float(s)


def test_e2_exposure_equals_truth(pipeline):
    pk = pipeline["pk"]
    truth = _read_csv(pipeline["truth"] / "feat_e2_exposure.csv")
    assert truth, "generator wrote no E2 truth"
    con = duckdb.connect(str(pipeline["home"].published), read_only=True)
    rows = con.execute("SELECT * FROM marts.feat_e2_exposure").fetchall()
    names = [d[0] for d in con.description]
    con.close()
    got = {
        (
            r[names.index("patient_key")],
            float(r[names.index("threshold_pg_ml")]),
            r[names.index("period")],
        ): dict(zip(names, r, strict=True))
        for r in rows
    }
    assert len(got) == len(truth)
    int_cols = [
        "n_results",
        "n_dates",
        "n_censored",
        "followup_days",
        "interpolated_days",
        "below_days",
        "gap_days",
        "indeterminate_days",
        "anastrozole_days",
        "anastrozole_below_days",
    ]
    for t in truth:
        key = (pk(NAMESPACE, t["mrn"]), float(t["threshold_pg_ml"]), t["period"])
        g = got[key]
        for c in int_cols:
            assert g[c] == int(t[c]), (t["period"], c)
        for c in ["fraction_below", "mean_e2_pg_ml", "min_e2_pg_ml", "max_e2_pg_ml"]:
            tv = _num(t[c])
            if tv is None:
                assert g[c] is None, c
            else:
                assert math.isclose(g[c], tv, rel_tol=1e-9, abs_tol=1e-9), c


def test_bmd_trend_equals_truth(pipeline):
    pk = pipeline["pk"]
    truth = _read_csv(pipeline["truth"] / "feat_bmd_trend.csv")
    assert truth
    con = duckdb.connect(str(pipeline["home"].published), read_only=True)
    rows = con.execute("SELECT * FROM marts.feat_bmd_trend").fetchall()
    names = [d[0] for d in con.description]
    con.close()
    got = {
        (r[names.index("patient_key")], r[names.index("site")]): dict(zip(names, r, strict=True))
        for r in rows
    }
    assert len(got) == len(truth)
    for t in truth:
        g = got[(pk(NAMESPACE, t["mrn"]), t["site"])]
        assert g["n_scans"] == int(t["n_scans"])
        for c in ["uses_sbmd", "sbmd_is_approximate", "exceeds_lsc"]:
            shown = None if g[c] is None else str(g[c]).lower()
            assert shown == (t[c].lower() or None), c
        assert g["n_manufacturers"] == int(t["n_manufacturers"])
        for c in ["slope_g_cm2_per_year", "slope_se_g_cm2_per_year", "slope_pct_per_year",
                  "change_g_cm2", "first_bmd_g_cm2", "last_bmd_g_cm2", "span_years", "lsc_g_cm2"]:  # fmt: skip
            tv = _num(t[c])
            if tv is None:
                assert g[c] is None, c
            else:
                assert math.isclose(g[c], tv, rel_tol=1e-6, abs_tol=1e-9), c
        assert (g["reason"] or "") == (t["reason"] or "")


def test_published_tables_hold_no_identifiers(pipeline):
    home = pipeline["home"]
    # the identifiers the parsers extracted, from the restricted store (MRNs, names, birth dates)
    ident = duckdb.connect(str(home.identity_db), read_only=True)
    rows = ident.execute(
        "SELECT identifier, family_name, given_name, birth_date FROM patient_identifier"
    ).fetchall()
    ident.close()
    needles = {p["mrn"] for p in _read_csv(pipeline["truth"] / "patients.csv")}
    for identifier, family, given, birth in rows:
        needles.add(identifier)
        needles.update(n for n in (family, given) if n and len(n) > 3)
        if birth:
            needles.update({birth, birth.replace("-", "")})
    assert len(rows) >= 60 and any(r[1] for r in rows)
    con = duckdb.connect(str(home.published), read_only=True)
    tables = [
        r[0]
        for r in con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables()"
        ).fetchall()
    ]
    blob = []
    for t in tables + ["omop.person", "omop.measurement"]:
        for row in con.execute("SELECT * FROM " + t).fetchall():  # noqa: S608 - catalog names
            blob.append("|".join("" if v is None else str(v) for v in row))
    con.close()
    text = "\n".join(blob)
    leaked = sorted(n for n in needles if n in text)
    assert leaked == []


def test_omop_counts_equal_core(pipeline):
    # omop holds the patients with a known birth year (CDM: year_of_birth is required) and
    # every record of theirs
    con = duckdb.connect(str(pipeline["home"].published), read_only=True)
    q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
    con.execute(
        "CREATE TEMP VIEW known AS "
        "SELECT patient_key FROM core.dim_patient WHERE birth_year IS NOT NULL"
    )
    assert q("SELECT count(*) FROM omop.person WHERE year_of_birth IS NULL") == 0
    assert q("SELECT count(*) FROM omop.person") == q("SELECT count(*) FROM known")
    # a lab result is one measurement; a DXA row of a feature site one per BMD / T / Z it has
    assert q("SELECT count(*) FROM omop.measurement") == q(
        "SELECT count(*) FROM core.fct_lab_result SEMI JOIN known USING (patient_key)"
    ) + q(
        "SELECT count(bmd_g_cm2) + count(t_score) + count(z_score) FROM core.fct_dexa_scan "
        "SEMI JOIN known USING (patient_key) "
        "WHERE site IN ('lumbar_spine', 'total_hip', 'femoral_neck')"
    )
    assert q("SELECT count(*) FROM omop.drug_exposure") == q(
        "SELECT count(*) FROM core.fct_medication SEMI JOIN known USING (patient_key)"
    )
    assert q("SELECT count(*) FROM omop.observation_period") == q(
        "SELECT count(DISTINCT patient_key) FROM (SELECT patient_key FROM core.fct_lab_result "
        "UNION ALL SELECT patient_key FROM core.fct_dexa_scan UNION ALL "
        "SELECT patient_key FROM core.fct_medication) SEMI JOIN known USING (patient_key)"
    )
    censored = q("SELECT count(*) FROM core.fct_lab_result WHERE comparator = '<'")
    assert censored > 0
    assert (
        q("SELECT count(*) FROM omop.measurement WHERE operator_concept_id = 4171756") == censored
    )
    con.close()


def test_every_analyst_table_and_column_is_described(pipeline):
    # the published snapshot (the writer's tables carry none: DuckDB 1.5.5 cannot replay a
    # COMMENT ON from the WAL after a crash, so comments are only written into the snapshot,
    # which is checkpointed before it is swapped in)
    for db in (pipeline["home"].published,):
        con = duckdb.connect(str(db), read_only=True)
        missing_tables = con.execute(
            "SELECT schema_name || '.' || table_name FROM duckdb_tables() "
            "WHERE schema_name IN ('core', 'marts') AND (comment IS NULL OR comment = '')"
        ).fetchall()
        missing_columns = con.execute(
            "SELECT schema_name || '.' || table_name || '.' || column_name FROM duckdb_columns() "
            "WHERE schema_name IN ('core', 'marts') AND (comment IS NULL OR comment = '')"
        ).fetchall()
        grain = con.execute(
            "SELECT comment FROM duckdb_tables() WHERE schema_name = 'marts' "
            "AND table_name = 'feat_bmd_trend'"
        ).fetchone()[0]
        con.close()
        assert missing_tables == [] and missing_columns == [], db
        assert "one row per" in grain.lower()


def test_status_command_shows_runs_quarantine_and_sizes_as_the_truth_has_them(pipeline, capsys):
    from pipelines.cli import main

    assert main(["status", "--home", str(pipeline["home"].root), "--runs", "1"]) == 0
    out = capsys.readouterr().out
    counts = _read_csv(pipeline["truth"] / "feed_counts.csv")
    held = {
        (r["feed"], r["check_name"]): int(r["count"])
        for r in _read_csv(pipeline["truth"] / "quarantine_expected.csv")
        if int(r["count"])
    }
    lines = out.splitlines()
    # two runs on the same input; only the newest is listed, and it found nothing new
    assert "runs: 2 in all; the last 1, newest first" in out
    [run_line] = [line for line in lines if line.startswith(pipeline["second_run_id"])]
    assert run_line.split()[-5:] == ["success", "0", "0", "0", "0"]
    assert pipeline["run_id"] not in out
    total = sum(held.values())
    assert f"held in quarantine: {total} records (all runs)" in out
    for (feed, check), n in held.items():
        assert any(line.split()[:3] == [feed, check, str(n)] for line in lines), (feed, check)
    sizes = {
        "core.dim_patient": len(_read_csv(pipeline["truth"] / "patients.csv")),
        "marts.feat_e2_exposure": len(_read_csv(pipeline["truth"] / "feat_e2_exposure.csv")),
        "marts.feat_bmd_trend": len(_read_csv(pipeline["truth"] / "feat_bmd_trend.csv")),
    }
    for table, n in sizes.items():
        assert [table, str(n)] in [line.split() for line in lines], table
    # the first run's totals are the truth's (the status reads runs.sql like the quality report)
    assert main(["status", "--home", str(pipeline["home"].root), "--runs", "2"]) == 0
    first = next(
        line.split()
        for line in capsys.readouterr().out.splitlines()
        if line.startswith(pipeline["run_id"])
    )
    expected = [
        sum(int(r[k]) for r in counts)
        for k in ("files", "records_received", "records_accepted", "records_quarantined")
    ]
    assert [int(v) for v in first[-4:]] == expected
