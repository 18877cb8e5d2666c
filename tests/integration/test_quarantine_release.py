"""Quarantine release after a mapping fix: an E2 result in a unit config/units.csv lacks is
held; once the unit is added, release re-stages its file and the result reaches core; a
result that still fails stays held; counts hold; a second release changes nothing."""

from __future__ import annotations

import shutil

import duckdb
import polars as pl
import pytest

from transforms import catalog
from warehouse import params, steps
from warehouse.quarantine import list_quarantine, release, show

pytestmark = pytest.mark.integration

MRN, FAMILY = "MRN7766554", "QUARFAKE"
# E2 in pg/mL (accepted), in ng/dL (unknown until the fix) and in "furlong" (never
# convertible), with distinct OBX-4 sub-ids (one result each).
# 1 ng/dL = 1000 pg / 100 mL = 10 pg/mL, so 1.5 ng/dL = 15 pg/mL.
HL7 = (
    "\r".join(
        [
            "MSH|^~\\&|LABWH_LIS|NORTH_CLINIC|LABWH|LABWH|20230105093000||ORU^R01^ORU_R01|MSG0001|P|2.5.1",
            f"PID|1||{MRN}^^^NORTH_CLINIC^MR||{FAMILY}^JOHN||19580312|M",
            "OBR|1||FIL0001^LABWH_LIS|HORM^Hormone panel^L|||20230105083000|||||||||||||||||F",
            "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN|1|18.4|pg/mL|10-40|N|||F",
            "OBX|2|NM|E2^Estradiol^L^2243-4^Estradiol^LN|2|1.5|ng/dL|||N|||F",
            "OBX|3|NM|E2^Estradiol^L^2243-4^Estradiol^LN|3|7|furlong|||N|||F",
        ]
    )
    + "\r"
)


@pytest.fixture
def config_dir(tmp_path, monkeypatch):
    """A copy of config/ the test may edit; the catalog reads it."""
    cfg = tmp_path / "config"
    shutil.copytree(catalog.CONFIG_DIR, cfg)
    monkeypatch.setattr(catalog, "CONFIG_DIR", cfg)
    catalog.clear_cache()
    yield cfg
    catalog.clear_cache()


def _run(home, landing, run_id):
    steps.start_run(home, run_id, landing)
    steps.land(home, landing, run_id)
    steps.stage(home, "hl7", run_id)
    steps.build_core(home, params.core_params())
    steps.finish_run(home, run_id)


def _state(home):
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        core = con.execute(
            "SELECT value, unit, original_unit FROM core.fct_lab_result ORDER BY value"
        ).fetchall()
        quarantine = con.execute(
            "SELECT position, check_name, released_at IS NOT NULL FROM quality.quarantine "
            "ORDER BY position"
        ).fetchall()
        files = con.execute(
            "SELECT n_received, n_accepted, n_quarantined FROM raw.files"
        ).fetchall()
        staged = con.execute("SELECT count(*) FROM staging.stg_hl7__lab_result").fetchone()[0]
    finally:
        con.close()
    return core, quarantine, files, staged


def test_release_after_adding_the_unit(home, tmp_path, config_dir):
    landing = tmp_path / "landing"
    (landing / "hl7").mkdir(parents=True)
    (landing / "hl7" / "batch.hl7").write_text(HL7)
    _run(home, landing, "run-1")

    core, quarantine, files, _ = _state(home)
    assert core == [(18.4, "pg/mL", "pg/mL")]
    assert quarantine == [("m0/s4", "unknown_unit", False), ("m0/s5", "unknown_unit", False)]
    assert files == [(3, 1, 2)]

    held = list_quarantine(home, check="unknown_unit")
    assert held.height == 2 and set(held["file_name"]) == {"hl7/batch.hl7"}
    record = show(home, held.filter(held["position"] == "m0/s4")["quarantine_id"][0])
    assert record["check_name"] == "unknown_unit" and record["position"] == "m0/s4"
    assert record["archived_exists"] and record["file_name"] == "hl7/batch.hl7"
    assert MRN not in repr(record) and FAMILY not in repr(record)

    # nothing changed yet: a release re-stages, both still fail, nothing moves
    first = release(home, check_name="unknown_unit", run_id="release-0")
    assert (first["selected"], first["released"], first["still_quarantined"]) == (2, 0, 2)
    assert _state(home)[:3] == (core, quarantine, files)

    # the fix: ng/dL → pg/mL is × 10
    with open(config_dir / "units.csv", "a", encoding="utf-8") as fh:
        fh.write("estradiol,ng/dL,10,1 ng/dL = 10 pg/mL (test)\n")
    out = release(home, check_name="unknown_unit", run_id="release-1")
    assert out == {
        "run_id": "release-1",
        "selected": 2,
        "files": 1,
        "released": 1,
        "still_quarantined": 1,
        "quarantined_under_other_check": 0,
    }
    core, quarantine, files, staged = _state(home)
    assert core == [(pytest.approx(15.0), "pg/mL", "ng/dL"), (18.4, "pg/mL", "pg/mL")]
    assert quarantine == [("m0/s4", "unknown_unit", True), ("m0/s5", "unknown_unit", False)]
    assert files == [(3, 2, 1)]  # received = accepted + quarantined still holds
    assert list_quarantine(home).height == 1
    assert list_quarantine(home, include_released=True).height == 2

    # again: only the furlong record is open; it still fails; nothing changes
    again = release(home, check_name="unknown_unit", run_id="release-2")
    assert (again["selected"], again["released"], again["still_quarantined"]) == (1, 0, 1)
    assert _state(home) == (core, quarantine, files, staged)

    # nothing selected → nothing done
    assert release(home, feed="dexa", run_id="release-3")["files"] == 0
    # an id that is no open record (this one was released) → an error, nothing done
    released_id = list_quarantine(home, include_released=True).filter(
        pl.col("position") == "m0/s4"
    )["quarantine_id"][0]
    with pytest.raises(LookupError, match=f"no open quarantine record {released_id}"):
        release(home, ids=[released_id], run_id="release-4")
    assert _state(home) == (core, quarantine, files, staged)


def test_release_run_report_shows_the_records_it_held_again(home, tmp_path, config_dir):
    """The quality report of a release run accounts for the records its re-stage held.

    batch.hl7 has 3 OBX: after the ng/dL fix the release re-stages it and counts 3 received,
    2 accepted, 1 quarantined (the furlong result, m0/s5, still held). That held record was
    first put aside by run-1, so it keeps run-1 as its run; the report of release-1 must
    still list it (1 record, 1 still held), not "Nothing was put aside" beside a feed table
    that says 1 quarantined.
    """
    from transforms.reporting.quality_html import render_quality_report
    from warehouse.quality_report import load_report_data

    landing = tmp_path / "landing"
    (landing / "hl7").mkdir(parents=True)
    (landing / "hl7" / "batch.hl7").write_text(HL7)
    _run(home, landing, "run-1")
    with open(config_dir / "units.csv", "a", encoding="utf-8") as fh:
        fh.write("estradiol,ng/dL,10,1 ng/dL = 10 pg/mL (test)\n")
    release(home, check_name="unknown_unit", run_id="release-1")

    data = load_report_data(home, "release-1")
    stats = [s for s in data.feed_stats if s["run_id"] == "release-1"]
    assert [(s["n_received"], s["n_accepted"], s["n_quarantined"]) for s in stats] == [(3, 2, 1)]
    assert [
        (r["feed"], r["check_name"], r["n_records"], r["n_open"], r["n_released"])
        for r in data.reasons
    ] == [("hl7", "unknown_unit", 1, 1, 0)]
    assert [(e["position"], e["is_released"]) for e in data.examples] == [("m0/s5", False)]
    html = render_quality_report(data)
    assert "Nothing was put aside in this run" not in html
    assert '<div class="n bad">1</div><div class="l">of these still held</div>' in html

    # run-1's own report is unchanged: its two records, one released since
    first = load_report_data(home, "run-1")
    assert [(r["n_records"], r["n_open"], r["n_released"]) for r in first.reasons] == [(2, 1, 1)]


def test_release_run_report_says_what_it_released(home, tmp_path, config_dir):
    """After the ng/dL fix, release-1 releases one record (m0/s4, hl7 unknown_unit, put aside
    by run-1): its report names that count per feed × check; run-1's report has none."""
    from transforms.reporting.quality_html import render_quality_report
    from warehouse.quality_report import load_report_data

    landing = tmp_path / "landing"
    (landing / "hl7").mkdir(parents=True)
    (landing / "hl7" / "batch.hl7").write_text(HL7)
    _run(home, landing, "run-1")
    with open(config_dir / "units.csv", "a", encoding="utf-8") as fh:
        fh.write("estradiol,ng/dL,10,1 ng/dL = 10 pg/mL (test)\n")
    release(home, check_name="unknown_unit", run_id="release-1")

    data = load_report_data(home, "release-1")
    assert [
        (r["feed"], r["check_name"], r["n_released"], r["n_files"]) for r in data.released_here
    ] == [("hl7", "unknown_unit", 1, 1)]
    html = render_quality_report(data)
    assert "Released by this run: 1 record" in html
    assert load_report_data(home, "run-1").released_here == []
