"""The feature marts are rebuilt for every patient when their parameters or model SQL change,
and refreshed only for touched patients otherwise."""

from __future__ import annotations

import duckdb
import pytest
import quality_fixture as qf

from warehouse import params, runner, steps

pytestmark = pytest.mark.integration


def _tamper(home) -> None:
    # a value no build produces, on every row: a full rebuild replaces it, a refresh of no
    # patient leaves it
    con = duckdb.connect(str(home.warehouse))
    try:
        con.execute("UPDATE marts.feat_bmd_trend SET n_scans = -1")
        con.execute("UPDATE marts.feat_e2_exposure SET n_results = -1")
    finally:
        con.close()


def _tampered(home) -> tuple[int, int]:
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        return con.execute(
            "SELECT (SELECT count(*) FROM marts.feat_bmd_trend WHERE n_scans = -1), "
            "(SELECT count(*) FROM marts.feat_e2_exposure WHERE n_results = -1)"
        ).fetchone()
    finally:
        con.close()


@pytest.fixture
def built(home):
    qf.build_quality_warehouse(home, with_bad_rows=False)
    _tamper(home)
    tampered = _tampered(home)
    assert min(tampered) > 0
    return home, tampered


def test_same_parameters_and_models_refresh_only_touched_patients(built):
    home, tampered = built
    steps.build_features(home, params.feature_params(), "r3")
    assert _tampered(home) == tampered


def test_a_parameter_change_rebuilds_every_patient_of_the_mart_that_uses_it(built):
    home, (bmd_tampered, _) = built
    steps.build_features(home, params.feature_params({"max_gap_days": 200}), "r3")
    assert _tampered(home) == (bmd_tampered, 0)  # an E2 parameter: the BMD mart is kept
    steps.build_features(home, params.feature_params({"min_span_years": 2.0}), "r4")
    assert _tampered(home) == (0, 0)


def test_a_changed_model_rebuilds_every_patient(built, monkeypatch):
    home, _ = built
    original = runner.model_sql

    def upgraded(name: str) -> str:
        sql = original(name)
        return sql + "\n-- a later version" if name == "marts.feat_bmd_trend" else sql

    monkeypatch.setattr(steps, "model_sql", upgraded)
    steps.build_features(home, params.feature_params(), "r3")
    bmd, e2 = _tampered(home)
    assert bmd == 0  # its model changed
    assert e2 > 0  # unchanged model: only touched patients (none)


def test_a_core_parameter_change_rebuilds_every_patient(built):
    # the persistence window shapes core.medication_exposure, hence every patient's
    # anastrozole days: the marts must not keep the old episodes for untouched patients
    home, _ = built
    steps.build_core(home, {**params.core_params(), "persistence_window_days": 5}, "r3")
    steps.build_features(home, params.feature_params(), "r3")
    assert _tampered(home) == (0, 0)


def test_an_unchanged_core_rebuild_keeps_the_refresh_incremental(built, tmp_path):
    # also when what changed is no input of the marts (the OMOP concept file, here moved)
    home, tampered = built
    concepts = tmp_path / "omop_concepts.csv"
    concepts.write_bytes(open(params.core_params()["omop_concepts_csv"], "rb").read())
    steps.build_core(home, {**params.core_params(), "omop_concepts_csv": str(concepts)}, "r3")
    steps.build_features(home, params.feature_params(), "r3")
    assert _tampered(home) == tampered
