"""Correction history on hand-written HL7 (F → C → D, the same messages out of order) and CSV."""

from __future__ import annotations

import datetime as dt
import hashlib

import duckdb
import pytest

from warehouse import params, steps

pytestmark = pytest.mark.integration

MSG = (
    "MSH|^~\\&|LABWH_LIS|NORTH_CLINIC|LABWH|LABWH|{msh7}||ORU^R01^ORU_R01|{ctrl}|P|2.5.1\r"
    "PID|1||MRN7777777^^^NORTH_CLINIC^MR||TESTER^ANNA||19600101|M\r"
    "OBR|1||FIL42^LABWH_LIS|HORM^Hormones^L|||20230105083000|||||||||||||||||{status}\r"
    "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||{value}|pg/mL|10-40|N|||{status}\r"
)
F = MSG.format(msh7="20230105120000", ctrl="C1", status="F", value="18.0")
C = MSG.format(msh7="20230106120000", ctrl="C2", status="C", value="22.5")
D = MSG.format(msh7="20230107120000", ctrl="C3", status="D", value="22.5")


def _deliver(home, landing, name, text, run_id):
    _deliver_files(home, landing, {"hl7/" + name: text}, run_id, "hl7")


def _deliver_files(home, landing, files: dict[str, str], run_id, feed):
    """Write ``files`` (paths relative to the landing folder), then land, stage and build core."""
    for rel, text in files.items():
        (landing / rel).parent.mkdir(parents=True, exist_ok=True)
        (landing / rel).write_text(text)
    steps.start_run(home, run_id, landing)
    steps.land(home, landing, run_id)
    steps.stage(home, feed, run_id)
    steps.build_core(home, params.core_params())


def _state(home):
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        current = con.execute(
            "SELECT value, result_status, is_corrected, n_versions FROM core.fct_lab_result "
            "WHERE analyte = 'estradiol'"
        ).fetchall()
        history = con.execute(
            "SELECT version_no, result_status, value, message_control_id, is_latest_version, "
            "valid_from, valid_to FROM core.fct_lab_result_history ORDER BY version_no"
        ).fetchall()
    finally:
        con.close()
    return current, history


def test_final_then_correction_then_delete(home, tmp_path):
    landing = tmp_path / "landing"
    _deliver(home, landing, "1_final.hl7", F, "r1")
    assert _state(home)[0] == [(18.0, "F", False, 1)]
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:  # MSH-4 reaches the current result: results can be split by lab
        facility = con.execute("SELECT sending_facility FROM core.fct_lab_result").fetchall()
    finally:
        con.close()
    assert facility == [("NORTH_CLINIC",)]

    _deliver(home, landing, "2_corrected.hl7", C, "r2")
    current, history = _state(home)
    assert current == [(22.5, "C", True, 2)]
    assert [(v, s, x, c, latest) for v, s, x, c, latest, _, _ in history] == [
        (1, "F", 18.0, "C1", False),
        (2, "C", 22.5, "C2", True),
    ]
    # the first version was valid until the correction's message time
    assert history[0][6] == history[1][5]

    _deliver(home, landing, "3_deleted.hl7", D, "r3")
    current, history = _state(home)
    assert current == []  # retracted: no current version
    assert [(v, s, c) for v, s, _, c, _, _, _ in history] == [
        (1, "F", "C1"),
        (2, "C", "C2"),
        (3, "D", "C3"),
    ]


def test_correction_arriving_first_ends_in_the_same_state(home, tmp_path):
    landing = tmp_path / "landing"
    _deliver(home, landing, "a_corrected.hl7", C, "r1")
    assert _state(home)[0] == [(22.5, "C", False, 1)]
    _deliver(home, landing, "b_final_late.hl7", F, "r2")
    current, history = _state(home)
    assert current == [(22.5, "C", True, 2)]
    assert [(v, s) for v, s, *_ in history] == [(1, "F"), (2, "C")]


def test_status_u_makes_the_preliminary_result_final(home, tmp_path):
    # HL7 table 0085 U: "results status change to final without retransmitting results
    # already sent as preliminary" (DOMAIN.md lists U). The preliminary 25.0 pg/mL is the
    # final result now: current with status F (features take F / C), the U kept as sent
    landing = tmp_path / "landing"
    prelim = MSG.format(msh7="20230105120000", ctrl="P1", status="P", value="25.0")
    _deliver(home, landing, "1_prelim.hl7", prelim, "r1")
    assert _state(home)[0] == [(25.0, "P", False, 1)]
    now_final = MSG.format(msh7="20230106120000", ctrl="U1", status="U", value="")
    _deliver(home, landing, "2_status_final.hl7", now_final, "r2")
    current, history = _state(home)
    assert current == [(25.0, "F", True, 2)]
    assert [(v, s, x, c) for v, s, x, c, *_ in history] == [
        (1, "P", 25.0, "P1"),
        (2, "U", None, "U1"),
    ]


def test_status_u_that_resends_the_value_is_final_with_it(home, tmp_path):
    landing = tmp_path / "landing"
    prelim = MSG.format(msh7="20230105120000", ctrl="P1", status="P", value="25.0")
    _deliver(home, landing, "1_prelim.hl7", prelim, "r1")
    resent = MSG.format(msh7="20230106120000", ctrl="U1", status="U", value="25.0")
    _deliver(home, landing, "2_status_final.hl7", resent, "r2")
    assert _state(home)[0] == [(25.0, "F", True, 2)]


@pytest.mark.parametrize(
    "orders",
    # with an OBR-3 filler order number, and without one (OBR-2 only): either way the second
    # OBX of the same code and time in one message is a second result, not a version
    ["||FIL43^LABWH_LIS|", "|PLC1||"],
    ids=["filler", "no-filler"],
)
def test_repeated_obx_without_sub_id_are_distinct_results_and_corrected_in_order(
    home, tmp_path, orders
):
    two = (
        "MSH|^~\\&|LABWH_LIS|NORTH_CLINIC|LABWH|LABWH|{msh7}||ORU^R01|{ctrl}|P|2.5.1\r"
        "PID|1||MRN7777777^^^NORTH_CLINIC^MR\r"
        "OBR|1" + orders + "HORM^Hormones^L|||20230105083000\r"
        "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||{a}|pg/mL|||||{st}\r"
        "OBX|2|NM|E2^Estradiol^L^2243-4^Estradiol^LN||{b}|pg/mL|||||{st}\r"
    )
    landing = tmp_path / "landing"
    _deliver(
        home,
        landing,
        "1.hl7",
        two.format(msh7="20230105120000", ctrl="A", st="F", a=11, b=12),
        "r1",
    )
    assert sorted(_state(home)[0]) == [(11.0, "F", False, 1), (12.0, "F", False, 1)]
    # the correction re-sends both; the second OBX is corrected, the first unchanged
    _deliver(
        home,
        landing,
        "2.hl7",
        two.format(msh7="20230106120000", ctrl="B", st="C", a=11, b=19),
        "r2",
    )
    current, history = _state(home)
    assert sorted((v, s, corrected) for v, s, corrected, _ in current) == [
        (11.0, "C", True),
        (19.0, "C", True),
    ]
    assert len(history) == 4


def test_without_filler_order_number_the_sub_id_tells_results_apart(home, tmp_path):
    # OBR-3 empty: two OBX of one code and time with OBX-4 1 and 2 are two results (DOMAIN:
    # a result is OBR-3 + OBX-3 + OBX-4); a later correction of sub-id 2 supersedes only it
    msg = (
        "MSH|^~\\&|LABWH_LIS|NORTH_CLINIC|LABWH|LABWH|{msh7}||ORU^R01|{ctrl}|P|2.5.1\r"
        "PID|1||MRN7777777^^^NORTH_CLINIC^MR\r"
        "OBR|1|PLC1||HORM^Hormones^L|||20230105083000\r"
        "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN|1|{a}|pg/mL|||||{st}\r"
        "OBX|2|NM|E2^Estradiol^L^2243-4^Estradiol^LN|2|{b}|pg/mL|||||{st}\r"
    )
    landing = tmp_path / "landing"
    first = msg.format(msh7="20230105120000", ctrl="A", st="F", a=18.4, b=31)
    _deliver(home, landing, "1.hl7", first, "r1")
    assert sorted((v, s, c) for v, s, c, _ in _state(home)[0]) == [
        (18.4, "F", False),
        (31.0, "F", False),
    ]
    correction = msg.format(msh7="20230106120000", ctrl="B", st="C", a=18.4, b=33)
    _deliver(home, landing, "2.hl7", correction, "r2")
    assert sorted((v, s, c, n) for v, s, c, n in _state(home)[0]) == [
        (18.4, "C", True, 2),
        (33.0, "C", True, 2),
    ]


def test_without_filler_order_number_a_correction_of_one_order_matches_it_alone(home, tmp_path):
    # two orders (OBR-2 only) at different times in one message, one E2 each: each is the
    # first of its code at its time, so a later message correcting only the second order
    # supersedes it (the repeat count is per order, i.e. per collection time, here)
    head = (
        "MSH|^~\\&|LABWH_LIS|NORTH_CLINIC|LABWH|LABWH|{msh7}||ORU^R01|{ctrl}|P|2.5.1\r"
        "PID|1||MRN7777777^^^NORTH_CLINIC^MR\r"
    )
    order = (
        "OBR|{n}|PLC{n}||HORM^Hormones^L|||{when}\r"
        "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||{v}|pg/mL|||||{st}\r"
    )
    first = head.format(msh7="20230105120000", ctrl="A") + "".join(
        order.format(n=n, when=w, v=v, st="F")
        for n, w, v in ((1, "20230105083000", 11), (2, "20230106083000", 12))
    )
    landing = tmp_path / "landing"
    _deliver(home, landing, "1.hl7", first, "r1")
    fix = head.format(msh7="20230107120000", ctrl="B") + order.format(
        n=1, when="20230106083000", v=19, st="C"
    )
    _deliver(home, landing, "2.hl7", fix, "r2")
    assert sorted(_state(home)[0]) == [(11.0, "F", False, 1), (19.0, "C", True, 2)]


def test_without_filler_order_number_repeats_are_counted_per_patient(home, tmp_path):
    # one message, two patients (ORU^R01 repeats PATIENT_RESULT), the same code and time, no
    # OBR-3: each patient's E2 is the first of its own; a correction for the second alone
    # supersedes it
    head = "MSH|^~\\&|LABWH_LIS|NORTH_CLINIC|LABWH|LABWH|{msh7}||ORU^R01|{ctrl}|P|2.5.1\r"
    patient = (
        "PID|1||{mrn}^^^NORTH_CLINIC^MR\r"
        "OBR|1|PLC1||HORM^Hormones^L|||20230105083000\r"
        "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||{v}|pg/mL|||||{st}\r"
    )
    both = head.format(msh7="20230105120000", ctrl="A") + "".join(
        patient.format(mrn=m, v=v, st="F") for m, v in (("MRN7777777", 11), ("MRN8888888", 12))
    )
    landing = tmp_path / "landing"
    _deliver(home, landing, "1.hl7", both, "r1")
    fix = head.format(msh7="20230106120000", ctrl="B") + patient.format(
        mrn="MRN8888888", v=19, st="C"
    )
    _deliver(home, landing, "2.hl7", fix, "r2")
    assert sorted(_state(home)[0]) == [(11.0, "F", False, 1), (19.0, "C", True, 2)]


NORTH_HEADER = (
    "MRN,PatientName,DOB,CollectionDateTime,TestCode,TestName,Result,Units,RefRange,Flag,"
    "AccessionNo,Status\n"
)


def _north_row(value, when="2023-01-05 08:30", code="E2SENS", accession="", status="F"):
    return f"MRN001,DOE^JOHN,1958-03-12,{when},{code},x,{value},pg/mL,,,{accession},{status}\n"


def _deliver_csv(home, landing, files: dict[str, str], run_id):
    northlab = {"lab_csv/northlab/" + name: text for name, text in files.items()}
    _deliver_files(home, landing, northlab, run_id, "lab_csv")


def _current_e2(home):
    return [(value, n) for value, _status, _corrected, n in _state(home)[0]]


def test_csv_versions_in_one_file_follow_the_line_number(home, tmp_path):
    # no accession number: one code at one collection time is one result, and a CSV row has
    # no message time, so of two versions in one file the later line is current: line 10,
    # not line 9 (text order put 'line 10' first)
    filler = "".join(_north_row(100 + i, f"2022-0{i + 1}-01 08:00", "TESTO") for i in range(7))
    text = NORTH_HEADER + filler + _north_row("20.0") + _north_row("25.0")
    _deliver_csv(home, tmp_path / "landing", {"export.csv": text}, "r1")
    assert _current_e2(home) == [(25.0, 2)]


def test_csv_versions_in_one_run_follow_the_landing_name(home, tmp_path):
    # two exports of one run carry the same result: the later landing name is current, not
    # the later content hash (the names are chosen against the hash order)
    first = NORTH_HEADER + _north_row("30.0")
    second = NORTH_HEADER + _north_row("35.0")
    by_hash = sorted([first, second], key=lambda t: hashlib.sha256(t.encode()).hexdigest())
    files = {"export_2.csv": by_hash[0], "export_1.csv": by_hash[1]}
    _deliver_csv(home, tmp_path / "landing", files, "r1")
    expected = float(by_hash[0].splitlines()[1].split(",")[6])
    assert _current_e2(home) == [(expected, 2)]


@pytest.mark.parametrize(
    "rows, current",
    [
        # an export of every version of a result: the correction replaces the final
        ([("5.0", "F"), ("25.0", "C")], [(25.0, 2)]),
        # a deletion withdraws it
        ([("5.0", "F"), ("5.0", "D")], []),
        # two exports joined with overlapping rows: the repeated row is not a second draw
        ([("5.0", "F"), ("5.0", "F")], [(5.0, 2)]),
    ],
    ids=["corrected", "deleted", "repeated"],
)
def test_csv_rows_of_one_accession_and_code_in_one_file_are_versions(home, tmp_path, rows, current):
    # a CSV file is not a message: a second row of an accession's code is a version of the
    # first, as it is when it arrives in a later file
    text = NORTH_HEADER + "".join(_north_row(v, accession="ACC1", status=s) for v, s in rows)
    _deliver_csv(home, tmp_path / "landing", {"export.csv": text}, "r1")
    assert _current_e2(home) == current


def test_csv_draws_of_one_accession_at_different_times_are_results_of_their_own(home, tmp_path):
    # a stimulation series: one accession, one code, three draws half an hour apart; a later
    # export corrects the second draw alone
    times = ("2023-01-05 08:00", "2023-01-05 08:30", "2023-01-05 09:00")
    series = "".join(
        _north_row(v, when=t, accession="ACC9") for v, t in zip((80, 45, 20), times, strict=True)
    )
    landing = tmp_path / "landing"
    _deliver_csv(home, landing, {"series.csv": NORTH_HEADER + series}, "r1")
    assert sorted(_current_e2(home)) == [(20.0, 1), (45.0, 1), (80.0, 1)]
    fix = _north_row(50, when=times[1], accession="ACC9", status="C")
    _deliver_csv(home, landing, {"fix.csv": NORTH_HEADER + fix}, "r2")
    assert sorted(_current_e2(home)) == [(20.0, 1), (50.0, 2), (80.0, 1)]


@pytest.mark.parametrize(
    "later",
    [
        _north_row("20.0", when="2023-01-05 08:45", accession="ACC1", status="C"),  # new time
        _north_row("20.0", when="2023-01-05", accession="ACC1", status="D"),  # date only
    ],
    ids=["correction-moves-the-time", "deletion-with-a-date-only"],
)
def test_a_csv_version_with_another_collection_time_still_supersedes(home, tmp_path, later):
    # a single draw per accession and code: the accession names the result, so a later
    # version supersedes it even when its collection time differs
    landing = tmp_path / "landing"
    first = _north_row("20.0", when="2023-01-05 08:30", accession="ACC1")
    _deliver_csv(home, landing, {"1.csv": NORTH_HEADER + first}, "r1")
    _deliver_csv(home, landing, {"2.csv": NORTH_HEADER + later}, "r2")
    assert _current_e2(home) == ([(20.0, 2)] if ",C\n" in later else [])


@pytest.mark.parametrize("order", ["value first", "no result first"])
def test_a_row_without_a_value_does_not_replace_a_value_of_the_same_status(home, tmp_path, order):
    # `TNP` (no result) and 25.0 for one accession, code and time, both final, in one file:
    # the value stays current, whichever line comes first
    rows = [_north_row("25.0", accession="ACC1"), _north_row("TNP", accession="ACC1")]
    if order == "no result first":
        rows.reverse()
    _deliver_csv(home, tmp_path / "landing", {"export.csv": NORTH_HEADER + "".join(rows)}, "r1")
    assert _current_e2(home) == [(25.0, 2)]


def test_an_hl7_version_without_a_value_of_the_same_message_time_still_supersedes(home, tmp_path):
    # a final, then the same MSH-7 re-sent as X (cannot be obtained) with no value: the later
    # file is current, as for any re-sent file (the value tiebreak is for CSV rows only)
    landing = tmp_path / "landing"
    _deliver(home, landing, "1.hl7", F, "r1")
    x = F.replace("|18.0|", "||").replace("|||F\r", "|||X\r").replace("||F\r", "||X\r")
    _deliver(home, landing, "2.hl7", x, "r2")
    assert [(v, s) for v, s, _, _ in _state(home)[0]] == [(None, "X")]


def test_a_file_sent_again_under_its_name_with_the_same_message_time_wins(
    home, tmp_path, monkeypatch
):
    # the sender fixes a value and re-sends the file under the same name, MSH-7 unchanged: of
    # two versions with equal message time and status, the later arrival is current (the
    # two contents are chosen so that the content hash would pick the first)
    versions = [F, F.replace("|18.0|", "|19.5|")]
    later = min(versions, key=lambda t: hashlib.sha256(t.encode()).hexdigest())
    earlier = next(v for v in versions if v is not later)
    landing = tmp_path / "landing"
    # received times are kept to the second: the two deliveries are a minute apart
    clock = [dt.datetime(2023, 1, 8, 9, 0)]
    monkeypatch.setattr(steps, "now", lambda: clock[0])
    _deliver(home, landing, "1_final.hl7", earlier, "r1")
    clock[0] += dt.timedelta(minutes=1)
    _deliver(home, landing, "1_final.hl7", later, "r2")
    expected = 19.5 if "|19.5|" in later else 18.0
    assert _state(home)[0] == [(expected, "F", True, 2)]
