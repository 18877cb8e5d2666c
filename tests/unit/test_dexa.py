"""DXA exports: Hologic CSV and GE Lunar enCORE text (real corpus headers + synthetic files).

sBMD expectations are computed from the published coefficients (DOMAIN.md), not the config.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

import pytest

from schemas.staging import StgDexaScan, columns_of
from transforms import textio
from transforms.dexa import (
    classify_columns,
    detect_scan_types,
    file_decimal,
    load_dexa_config,
    parse_dexa_file,
)

DXA_CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpus" / "derickschaefer_dxafile"
MAIN_SITES = {"lumbar_spine", "total_hip", "femoral_neck"}


def fake_pseudonymize(namespace: str, identifier: str) -> str:
    return f"{namespace}|{identifier}"


def lunar_bytes(header: list[str], rows: list[dict[str, str]]) -> bytes:
    """A Lunar enCORE-style export: UTF-16LE with BOM, TAB-separated, CRLF."""
    lines = ["\t".join(header)] + ["\t".join(r.get(c, "") for c in header) for r in rows]
    return b"\xff\xfe" + ("\r\n".join(lines) + "\r\n").encode("utf-16-le")


def parse_lunar(header: list[str], rows: list[dict[str, str]], file_name: str, sha: str = "s"):
    return parse_dexa_file(
        lunar_bytes(header, rows),
        file_sha256=sha,
        vendor="lunar",
        file_name=file_name,
        pseudonymize=fake_pseudonymize,
    )


def site_rows(result, line: int) -> dict[tuple[str, str | None], dict]:
    rows = result.rows.filter(result.rows["position"] == f"line {line}").to_dicts()
    return {(r["site"], r["side"]): r for r in rows}


# --- real enCORE headers (../shared/corpus/derickschaefer_dxafile) ---------------------------


def corpus_header(name: str) -> tuple[bytes, list[str]]:
    data = (DXA_CORPUS / name).read_bytes()
    header, rows = textio.read_table(textio.decode(data), "\t")
    assert rows == []
    return data, header


def test_total_body_header_every_measure_column_classified():
    _, header = corpus_header("SchNav_Data_Total_Body.HEADER_ONLY.txt")
    # counted by reading the header: 17 regions (Head, Arms, Legs, Trunk, Ribs, Pelvis, Spine,
    # Arm Left, Leg Left, Arm Right, Leg Right, Total, TBLH, Trunk Left, Total Left, Trunk
    # Right, Total Right), each with BMD, BMC, Area, T-Score, Z-Score, heights, widths
    assert len(header) == 123
    counts = {
        suffix: sum(c.endswith(" " + suffix) for c in header)
        for suffix in ("BMD", "T-Score", "Z-Score")
    }
    assert counts == {"BMD": 17, "T-Score": 17, "Z-Score": 17}

    cfg = load_dexa_config("lunar")
    types = detect_scan_types(header, "SchNav_Data_Total_Body.txt", cfg)
    assert types == ("total_body",)
    assert detect_scan_types(header, "export.txt", cfg) == ("total_body",)  # from the columns
    # a total-body export under a hip or spine name: its columns decide (its Total Left and
    # Total Right are the body's halves, never hips)
    for misnamed in ("Visit2_Left_Hip.txt", "P1_DualFemur.txt", "P1_AP_Spine.txt"):
        assert detect_scan_types(header, misnamed, cfg) == ("total_body",), misnamed
    roles = classify_columns(header, cfg, types)
    assert Counter(r.measure for r in roles) == {"bmd": 17, "t_score": 17, "z_score": 17}
    assert {r.column for r in roles} == {
        c for c in header if c.endswith((" BMD", " T-Score", " Z-Score"))
    }
    assert not {r.site for r in roles} & MAIN_SITES
    by_col = {r.column: r for r in roles}
    assert (by_col["Total Left BMD"].site, by_col["Total Left BMD"].side) == ("tb_total", "left")
    assert (by_col["Spine BMD"].site, by_col["Spine BMD"].side) == ("tb_spine", None)
    assert (by_col["Arm Right Z-Score"].site, by_col["Arm Right Z-Score"].side) == (
        "tb_arm",
        "right",
    )


@pytest.mark.parametrize(
    ("name", "n_columns"),
    [
        ("SchNav_Data_Total_Body.HEADER_ONLY.txt", 123),
        ("SchNav_Data_Total_Body_Comp.HEADER_ONLY.txt", 160),
        ("SchNav_Data_Total_Body_CoreScan.HEADER_ONLY.txt", 6),
    ],
)
def test_header_only_files_give_no_rows(name, n_columns):
    data, header = corpus_header(name)
    assert len(header) == n_columns
    res = parse_dexa_file(
        data, file_sha256="s", vendor="lunar", file_name=name, pseudonymize=fake_pseudonymize
    )
    assert res.received == 0 and res.identities == []
    assert res.rows.schema == columns_of(StgDexaScan)


def test_body_composition_header_has_no_measure_columns():
    _, header = corpus_header("SchNav_Data_Total_Body_Comp.HEADER_ONLY.txt")
    cfg = load_dexa_config("lunar")
    assert classify_columns(header, cfg, detect_scan_types(header, "x_Total_Body_Comp", cfg)) == []


def test_total_body_row_never_maps_to_hip_or_spine():
    _, header = corpus_header("SchNav_Data_Total_Body.HEADER_ONLY.txt")
    row = {c: "1.100" for c in header if c.endswith(" BMD")}
    row.update({c: "-0.5" for c in header if c.endswith(("T-Score", "Z-Score"))})
    row.update({c: "1,364" for c in header if c.endswith(" BMC")})
    row.update({"Last Name": "Doe", "First Name": "John", "Patient ID": "123"})
    row["Measure Date"] = "03/04/2022"
    res = parse_lunar(header, [row], "SchNav_Data_Total_Body.txt")
    assert res.rejects == []
    assert res.rows.height == 17  # one row per region (site × side)
    assert not set(res.rows["site"]) & MAIN_SITES
    assert res.rows["sbmd_mg_cm2"].null_count() == 17
    left = site_rows(res, 2)[("tb_total", "left")]
    assert (left["region"], left["bmd_g_cm2"], left["t_score"]) == ("Total Left", 1.1, -0.5)


# --- synthetic Lunar AP spine and dual femur ---------------------------------------------------

SPINE_HEADER = [
    "Last Name", "First Name", "Patient ID", "Birth Date", "Sex", "Measure Date",
    "Instrument Model", "Serial Number", "Software Version", "Weight",
    "L1 BMD", "L2 BMD", "L3 BMD", "L4 BMD",
    "L1-L4 BMD", "L1-L4 BMC", "L1-L4 Area", "L1-L4 T-Score", "L1-L4 Z-Score",
    "L2-L4 BMD", "L2-L4 T-Score", "L2-L4 Z-Score",
]  # fmt: skip
SPINE_ROWS = [
    {  # line 2: full export with L2-L4
        "Last Name": "Doe", "First Name": "John", "Patient ID": "1234567",
        "Birth Date": "03/12/1958", "Sex": "Male", "Measure Date": "01/15/2023",
        "Instrument Model": "Prodigy", "Serial Number": "200123", "Software Version": "16.0",
        "Weight": "185.2 lbs", "L1 BMD": "1.050", "L2 BMD": "1.100", "L3 BMD": "1.150",
        "L4 BMD": "1.200", "L1-L4 BMD": "1.125", "L1-L4 BMC": "1,364", "L1-L4 Area": "61.2",
        "L1-L4 T-Score": "-0.5", "L1-L4 Z-Score": "0.1",
        "L2-L4 BMD": "1.150", "L2-L4 T-Score": "-0.3", "L2-L4 Z-Score": "0.2",
    },
    {  # line 3: a later scan exported without L2-L4
        "Last Name": "Doe", "First Name": "John", "Patient ID": "1234567",
        "Measure Date": "02/20/2024", "Instrument Model": "Prodigy", "Serial Number": "200123",
        "Software Version": "16.0", "L1-L4 BMD": "1.110", "L1-L4 BMC": "1,401",
        "L1-L4 T-Score": "-0.6", "L1-L4 Z-Score": "0.0",
    },
    {  # line 4: no patient id
        "Last Name": "Roe", "First Name": "Jane", "Measure Date": "02/20/2024",
        "L1-L4 BMD": "1.000",
    },
    {  # line 5: BMD that is not a number
        "Patient ID": "7654321", "Measure Date": "02/20/2024", "L1-L4 BMD": "n.v.",
    },
]  # fmt: skip


def lunar_genant(bmd: float) -> float:
    return 1000 * (0.9683 * (bmd - 1.100) + 1.0436)


@pytest.fixture
def spine():
    return parse_lunar(SPINE_HEADER, SPINE_ROWS, "Clinic_2023_AP_Spine.txt", sha="sha-spine")


def test_lunar_spine_sites_and_values(spine):
    assert spine.rows.schema == columns_of(StgDexaScan)
    assert [(r.position, r.check_name) for r in spine.rejects] == [
        ("line 4", "missing_patient_id"),
        ("line 5", "unparseable_value"),
    ]
    first = site_rows(spine, 2)
    assert set(first) == {
        ("lumbar_spine", None),
        ("l1", None),
        ("l2", None),
        ("l3", None),
        ("l4", None),
    }
    ls = first[("lumbar_spine", None)]
    assert (ls["region"], ls["bmd_g_cm2"], ls["bmd_l2_l4_g_cm2"]) == ("L1-L4", 1.125, 1.150)
    assert (ls["t_score"], ls["z_score"]) == (-0.5, 0.1)  # of L1-L4, not of L2-L4
    # sBMD from L2-L4: 1000 × (0.9683 × (1.150 − 1.100) + 1.0436) = 1092.015
    assert ls["sbmd_mg_cm2"] == pytest.approx(lunar_genant(1.150), abs=1e-9)
    assert ls["sbmd_mg_cm2"] == pytest.approx(1092.015, abs=1e-9)
    assert ls["sbmd_is_approximate"] is False
    assert (ls["manufacturer"], ls["model"], ls["serial"], ls["software_version"]) == (
        "GE Lunar",
        "Prodigy",
        "200123",
        "16.0",
    )
    assert (ls["scan_date"], ls["patient_key"], ls["source_system"]) == (
        dt.date(2023, 1, 15),
        "NORTH_CLINIC|1234567",
        "lunar",
    )
    assert (ls["birth_year"], ls["sex"]) == (1958, "M")
    assert first[("l3", None)]["bmd_g_cm2"] == 1.150
    assert first[("l3", None)]["sbmd_mg_cm2"] is None

    later = site_rows(spine, 3)[("lumbar_spine", None)]
    # no L2-L4 in the export: sBMD from L1-L4, flagged: 1000 × (0.9683 × 0.010 + 1.0436)
    assert later["bmd_l2_l4_g_cm2"] is None
    assert later["sbmd_mg_cm2"] == pytest.approx(1053.283, abs=1e-9)
    assert later["sbmd_is_approximate"] is True


def test_lunar_scan_id_is_derived_and_stable(spine):
    ids = {r["position"]: r["scan_id"] for r in spine.rows.to_dicts()}
    assert ids["line 2"] != ids["line 3"]  # another date
    assert ids["line 2"].startswith("lunar-20230115-spine-")
    again = parse_lunar(SPINE_HEADER, SPINE_ROWS[:1], "Clinic_2023_AP_Spine.txt", sha="other")
    assert set(again.rows["scan_id"]) == {ids["line 2"]}
    assert "1234567" not in ids["line 2"]


def test_lunar_identity_kept_apart(spine):
    assert len(spine.identities) == 1
    ident = spine.identities[0]
    assert (ident.identifier, ident.family_name, ident.given_name, ident.birth_date) == (
        "1234567",
        "Doe",
        "John",
        "1958-03-12",
    )
    text = " ".join(f"{r.reason} {r.excerpt}" for r in spine.rejects)
    assert "Roe" not in text and "Jane" not in text and "7654321" not in text


FEMUR_HEADER = [
    "Last Name", "First Name", "Patient ID", "Measure Date", "Instrument Model",
    "Serial Number", "Software Version",
    "Neck Left BMD", "Neck Left T-Score", "Neck Left Z-Score", "Upper Neck Left BMD",
    "Wards Left BMD", "Troch Left BMD", "Shaft Left BMD",
    "Total Left BMD", "Total Left BMC", "Total Left T-Score", "Total Left Z-Score",
    "Neck Right BMD", "Neck Right T-Score", "Neck Right Z-Score",
    "Total Right BMD", "Total Right T-Score", "Total Right Z-Score",
    "Neck Mean BMD", "Total Mean BMD",
]  # fmt: skip
FEMUR_ROW = {
    "Last Name": "Doe", "First Name": "John", "Patient ID": "1234567",
    "Measure Date": "01/15/2023", "Instrument Model": "iDXA", "Serial Number": "300456",
    "Software Version": "16.0",
    "Neck Left BMD": "0.900", "Neck Left T-Score": "-1.2", "Neck Left Z-Score": "-0.8",
    "Upper Neck Left BMD": "0.700", "Wards Left BMD": "0.650", "Troch Left BMD": "0.800",
    "Shaft Left BMD": "1.100",
    "Total Left BMD": "1.000 g/cm²", "Total Left BMC": "1,364", "Total Left T-Score": "-0.4",
    "Total Left Z-Score": "0.0",
    "Neck Right BMD": "0.920", "Neck Right T-Score": "-1.0", "Neck Right Z-Score": "-0.6",
    "Total Right BMD": "1.020", "Total Right T-Score": "-0.3", "Total Right Z-Score": "0.1",
    "Neck Mean BMD": "0.910", "Total Mean BMD": "1.010",
}  # fmt: skip


def test_lunar_sub_region_means_and_differences_are_not_read():
    # a research export with Mean / Diff columns for every sub-region: computed from both
    # sides, they are no measurement (and have no side): the row is read without them
    extra = {"Upper Neck Mean BMD": "0.700", "Wards Mean BMD": "0.640", "Troch Diff. BMD": "0.01",
             "Shaft Diff BMD": "0.02"}  # fmt: skip
    res = parse_lunar([*FEMUR_HEADER, *extra], [{**FEMUR_ROW, **extra}], "PAT_DualFemur.txt")
    assert res.rejects == []
    assert {site for site, _ in site_rows(res, 2)} == {
        "femoral_neck", "total_hip", "upper_neck", "wards", "trochanter", "shaft"
    }  # fmt: skip
    assert all(side in ("left", "right") for _, side in site_rows(res, 2))


@pytest.mark.parametrize("file_name", ["PAT_2023_DualFemur.txt", "export.txt"])
def test_lunar_dual_femur(file_name):
    # without a hint in the file name the scan type comes from the columns
    res = parse_lunar(FEMUR_HEADER, [FEMUR_ROW], file_name)
    assert res.rejects == []
    rows = site_rows(res, 2)
    assert set(rows) == {
        ("femoral_neck", "left"),
        ("femoral_neck", "right"),
        ("total_hip", "left"),
        ("total_hip", "right"),
        ("upper_neck", "left"),
        ("wards", "left"),
        ("trochanter", "left"),
        ("shaft", "left"),
    }  # the 'Mean' columns are not sites of their own
    neck_l = rows[("femoral_neck", "left")]
    assert (neck_l["region"], neck_l["bmd_g_cm2"], neck_l["t_score"], neck_l["z_score"]) == (
        "Neck Left",
        0.9,
        -1.2,
        -0.8,
    )
    # Lunar neck: 1000 × (−0.023 + 0.939 × 0.900) = 822.1; total: 1000 × (−0.031 + 0.979 × 1.0)
    assert neck_l["sbmd_mg_cm2"] == pytest.approx(822.1, abs=1e-9)
    total_l = rows[("total_hip", "left")]
    assert total_l["bmd_g_cm2"] == 1.0  # '1.000 g/cm²': unit in the cell
    assert total_l["sbmd_mg_cm2"] == pytest.approx(948.0, abs=1e-9)
    assert rows[("femoral_neck", "right")]["sbmd_mg_cm2"] == pytest.approx(
        1000 * (-0.023 + 0.939 * 0.920), abs=1e-9
    )
    assert rows[("total_hip", "right")]["sbmd_mg_cm2"] == pytest.approx(967.58, abs=1e-9)
    assert rows[("wards", "left")]["sbmd_mg_cm2"] is None
    assert {r["scan_id"] for r in rows.values()} == {next(iter(rows.values()))["scan_id"]}


def test_lunar_unknown_bmd_unit_is_rejected():
    row = {**FEMUR_ROW, "Neck Left BMD": "0.9 lbs"}
    res = parse_lunar(FEMUR_HEADER, [row], "x_DualFemur.txt")
    assert res.rows.height == 0
    assert [(r.position, r.check_name) for r in res.rejects] == [("line 2", "unknown_unit")]


# --- Hologic APEX-style CSV ---------------------------------------------------------------

HOLOGIC_HEADER = (
    "PAT_ID,PAT_NAME,DOB,SEX,SCAN_ID,SCAN_DATE,SCAN_TYPE,SIDE,INSTRUMENT,SERIAL_NUMBER,"
    "SOFTWARE_VERSION,L1_BMD,L2_BMD,L3_BMD,L4_BMD,L1L4_BMD,L1L4_TSCORE,L1L4_ZSCORE,L2L4_BMD,"
    "L2L4_TSCORE,L2L4_ZSCORE,NECK_BMD,NECK_TSCORE,NECK_ZSCORE,TROCH_BMD,INTER_BMD,WARDS_BMD,"
    "HTOT_BMD,HTOT_TSCORE,HTOT_ZSCORE"
).split(",")
DEVICE = {"INSTRUMENT": "Horizon A", "SERIAL_NUMBER": "H1234", "SOFTWARE_VERSION": "13.6.0.5"}
PERSON = {"PAT_ID": "P1", "PAT_NAME": "DOE^JOHN", "DOB": "03/12/1958", "SEX": "M"}
SPINE_VALUES = {
    "L1_BMD": "1.001", "L2_BMD": "1.052", "L3_BMD": "1.103", "L4_BMD": "1.154",
    "L1L4_BMD": "1.080", "L1L4_TSCORE": "-1.1", "L1L4_ZSCORE": "-0.4",
    "L2L4_BMD": "1.110", "L2L4_TSCORE": "-0.9", "L2L4_ZSCORE": "-0.3",
}  # fmt: skip
HOLOGIC_ROWS = [
    {**PERSON, **DEVICE, **SPINE_VALUES, "SCAN_ID": "S100", "SCAN_DATE": "01/10/2023", "SCAN_TYPE": "Spine"},  # line 2
    {**PERSON, **DEVICE, "SCAN_ID": "S101", "SCAN_DATE": "01/10/2023", "SCAN_TYPE": "Hip", "SIDE": "Left",
     "NECK_BMD": "0.850", "NECK_TSCORE": "-1.0", "NECK_ZSCORE": "-0.5", "TROCH_BMD": "0.700",
     "INTER_BMD": "1.000", "WARDS_BMD": "0.600", "HTOT_BMD": "0.950", "HTOT_TSCORE": "-0.6",
     "HTOT_ZSCORE": "-0.2"},  # line 3
    {**PERSON, **DEVICE, "SCAN_ID": "S102", "SCAN_DATE": "01/10/2023", "SCAN_TYPE": "Hip", "SIDE": "Right",
     "NECK_BMD": "0.860", "NECK_TSCORE": "-0.9", "NECK_ZSCORE": "-0.4", "HTOT_BMD": "0.960",
     "HTOT_TSCORE": "-0.5", "HTOT_ZSCORE": "-0.1"},  # line 4
    {**DEVICE, **SPINE_VALUES, "PAT_NAME": "ROE^JANE", "SCAN_ID": "S103", "SCAN_DATE": "01/11/2023", "SCAN_TYPE": "Spine"},  # line 5
    {**DEVICE, **SPINE_VALUES, "PAT_ID": "P2", "SCAN_ID": "S104", "SCAN_DATE": "02/30/2023", "SCAN_TYPE": "Spine"},  # line 6
    {**DEVICE, "PAT_ID": "P2", "SCAN_ID": "S105", "SCAN_DATE": "02/20/2023", "SCAN_TYPE": "Spine", "L1L4_BMD": "abc"},  # line 7
    {**DEVICE, "PAT_ID": "P2", "SCAN_ID": "S106", "SCAN_DATE": "02/20/2023", "SCAN_TYPE": "Spine", "L1L4_BMD": "1.0 lbs"},  # line 8
    {**DEVICE, "PAT_ID": "P2", "SCAN_ID": "S107", "SCAN_DATE": "02/20/2023", "SCAN_TYPE": "Spine", "L1L4_BMD": "1.000",
     "L1L4_TSCORE": "-0.8"},  # line 9
    {**DEVICE, "PAT_ID": "P2", "SCAN_ID": "S108", "SCAN_DATE": "02/20/2023", "SCAN_TYPE": "Hip", "SIDE": "Left"},  # line 10
    {**DEVICE, "PAT_ID": "P2", "SCAN_ID": "S109", "SCAN_DATE": "02/20/2023", "SCAN_TYPE": "Hip", "SIDE": "Both",
     "NECK_BMD": "0.800"},  # line 11
]  # fmt: skip


def hologic_bytes(rows: list[dict[str, str]]) -> bytes:
    lines = [",".join(HOLOGIC_HEADER)] + [
        ",".join(r.get(c, "") for c in HOLOGIC_HEADER) for r in rows
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.fixture
def hologic():
    return parse_dexa_file(
        hologic_bytes(HOLOGIC_ROWS),
        file_sha256="sha-h",
        vendor="hologic",
        file_name="apex_export.csv",
        pseudonymize=fake_pseudonymize,
    )


def test_hologic_mixed_file(hologic):
    assert hologic.rows.schema == columns_of(StgDexaScan)
    assert [(r.position, r.check_name) for r in hologic.rejects] == [
        ("line 5", "missing_patient_id"),
        ("line 6", "unparseable_value"),  # 02/30/2023
        ("line 7", "unparseable_value"),  # abc
        ("line 8", "unknown_unit"),  # BMD in lbs
        ("line 10", "unparseable_value"),  # no BMD / T / Z at all
        ("line 11", "unparseable_value"),  # side 'Both'
    ]
    assert sorted(set(hologic.rows["position"])) == ["line 2", "line 3", "line 4", "line 9"]


def test_hologic_spine_values(hologic):
    rows = site_rows(hologic, 2)
    assert set(rows) == {
        ("lumbar_spine", None),
        ("l1", None),
        ("l2", None),
        ("l3", None),
        ("l4", None),
    }
    ls = rows[("lumbar_spine", None)]
    assert (ls["bmd_g_cm2"], ls["bmd_l2_l4_g_cm2"], ls["t_score"], ls["z_score"]) == (
        1.08,
        1.11,
        -1.1,
        -0.4,
    )
    # Hologic L2-L4 1.110: 1000 × (1.0550 × (1.110 − 0.972) + 1.0436) = 1189.19
    assert ls["sbmd_mg_cm2"] == pytest.approx(1189.19, abs=1e-9)
    assert ls["sbmd_is_approximate"] is False
    assert (ls["scan_id"], ls["manufacturer"], ls["model"], ls["serial"], ls["software_version"]) == (
        "S100", "Hologic", "Horizon A", "H1234", "13.6.0.5",
    )  # fmt: skip
    assert (ls["scan_date"], ls["birth_year"], ls["sex"], ls["source_system"]) == (
        dt.date(2023, 1, 10), 1958, "M", "hologic",
    )  # fmt: skip

    only_l1_l4 = site_rows(hologic, 9)[("lumbar_spine", None)]
    # 1000 × (1.0550 × (1.000 − 0.972) + 1.0436) = 1073.14, approximate (L1-L4)
    assert only_l1_l4["sbmd_mg_cm2"] == pytest.approx(1073.14, abs=1e-9)
    assert only_l1_l4["sbmd_is_approximate"] is True


def test_hologic_hip_sides(hologic):
    left = site_rows(hologic, 3)
    assert set(left) == {
        ("femoral_neck", "left"),
        ("total_hip", "left"),
        ("trochanter", "left"),
        ("intertrochanter", "left"),
        ("wards", "left"),
    }
    neck = left[("femoral_neck", "left")]
    assert (neck["bmd_g_cm2"], neck["t_score"], neck["z_score"], neck["scan_id"]) == (
        0.85,
        -1.0,
        -0.5,
        "S101",
    )
    # Hologic neck: 1000 × (0.019 + 1.087 × 0.850) = 942.95; total: 1000 × (0.006 + 1.008 × 0.950)
    assert neck["sbmd_mg_cm2"] == pytest.approx(942.95, abs=1e-9)
    assert left[("total_hip", "left")]["sbmd_mg_cm2"] == pytest.approx(963.6, abs=1e-9)
    right = site_rows(hologic, 4)
    assert set(right) == {("femoral_neck", "right"), ("total_hip", "right")}
    assert right[("total_hip", "right")]["bmd_g_cm2"] == 0.96


def test_hologic_misaligned_name_reject_quotes_no_identifier():
    row = {**PERSON, **DEVICE, **SPINE_VALUES, "SCAN_ID": "S1", "SCAN_DATE": "01/10/2023"}
    row["SCAN_TYPE"] = "Spine"
    row["PAT_NAME"] = "DOE, JOHN, JR"  # unquoted commas: two extra cells
    res = parse_dexa_file(
        hologic_bytes([row]),
        file_sha256="s",
        vendor="hologic",
        file_name="x.csv",
        pseudonymize=fake_pseudonymize,
    )
    assert res.rows.height == 0
    (reject,) = res.rejects
    assert (reject.check_name, reject.excerpt) == ("unparseable_value", None)
    assert "03/12/1958" not in reject.reason and "P1" not in reject.reason


def test_hologic_identity(hologic):
    ids = {i.identifier: i for i in hologic.identities}
    assert set(ids) == {"P1", "P2"}
    assert (ids["P1"].family_name, ids["P1"].given_name, ids["P1"].birth_date) == (
        "DOE",
        "JOHN",
        "1958-03-12",
    )
    assert "PAT_NAME" not in hologic.rows.columns
    text = " ".join(f"{r.reason} {r.excerpt}" for r in hologic.rejects)
    assert "ROE" not in text and "P2" not in text


# --- export shapes seen in real installations ------------------------------------------------

SINGLE_FEMUR_HEADER = ["Patient ID", "Measure Date", "Neck BMD", "Neck T-Score", "Total BMD"]
SINGLE_FEMUR_ROW = {
    "Patient ID": "P9",
    "Measure Date": "05/02/2023",
    "Neck BMD": "0.812",
    "Neck T-Score": "-1.6",
    "Total BMD": "0.934",
}


@pytest.mark.parametrize(
    ("file_name", "side"), [("P9_Left_Femur.txt", "left"), ("P9 RIGHT hip.txt", "right")]
)
def test_lunar_single_femur_takes_its_side_from_the_file_name(file_name, side):
    res = parse_lunar(SINGLE_FEMUR_HEADER, [SINGLE_FEMUR_ROW], file_name)
    assert res.rejects == []
    rows = site_rows(res, 2)
    assert set(rows) == {("femoral_neck", side), ("total_hip", side)}
    assert (rows[("femoral_neck", side)]["bmd_g_cm2"], rows[("femoral_neck", side)]["t_score"]) == (
        0.812,
        -1.6,
    )
    assert rows[("total_hip", side)]["bmd_g_cm2"] == 0.934


@pytest.mark.parametrize("file_name", ["P9_Femur.txt", "P9_Left_Right_Femur.txt"])
def test_a_hip_without_a_side_is_rejected_not_staged(file_name):
    """Two such hips would be one row of core.fct_dexa_scan (site × side): one would vanish."""
    res = parse_lunar(SINGLE_FEMUR_HEADER, [SINGLE_FEMUR_ROW], file_name)
    assert res.rows.height == 0
    assert [(r.position, r.check_name) for r in res.rejects] == [("line 2", "unparseable_value")]
    assert "has no side" in res.rejects[0].reason


def test_hologic_hip_side_from_the_scan_type_cell_when_side_is_empty():
    hips = [
        {**PERSON, "SCAN_DATE": "01/10/2023", "SCAN_TYPE": "Left Hip", "NECK_BMD": "0.850", "L1L4_BMD": "1.2"},
        {**PERSON, "SCAN_DATE": "01/10/2023", "SCAN_TYPE": "Right Hip", "NECK_BMD": "0.860"},
        {**PERSON, "SCAN_DATE": "01/10/2023", "SCAN_TYPE": "Hip", "NECK_BMD": "0.870"},
    ]  # fmt: skip
    res = parse_dexa_file(
        hologic_bytes(hips), file_sha256="s", vendor="hologic", file_name="apex.csv",
        pseudonymize=fake_pseudonymize,
    )  # fmt: skip
    # 'Left Hip' is a hip scan: its spine cell is not read
    assert set(site_rows(res, 2)) == {("femoral_neck", "left")}
    assert site_rows(res, 2)[("femoral_neck", "left")]["bmd_g_cm2"] == 0.85
    assert set(site_rows(res, 3)) == {("femoral_neck", "right")}
    assert [(r.position, r.check_name) for r in res.rejects] == [("line 4", "unparseable_value")]


def test_femur_columns_in_a_file_named_spine_are_hips():
    header = [
        "Patient ID",
        "Measure Date",
        "L1-L4 BMD",
        "Neck Left BMD",
        "Total Left BMD",
        "Neck Mean BMD",
    ]
    row = {"Patient ID": "P9", "Measure Date": "05/02/2023", "L1-L4 BMD": "1.101",
           "Neck Left BMD": "0.801", "Total Left BMD": "0.905", "Neck Mean BMD": "0.850"}  # fmt: skip
    cfg = load_dexa_config("lunar")
    assert detect_scan_types(header, "P9_AP_Spine.txt", cfg) == ("spine", "femur")
    res = parse_lunar(header, [row], "P9_AP_Spine.txt")
    assert res.rejects == []
    rows = site_rows(res, 2)
    assert set(rows) == {("lumbar_spine", None), ("femoral_neck", "left"), ("total_hip", "left")}
    assert rows[("total_hip", "left")]["bmd_g_cm2"] == 0.905


def test_total_body_named_by_the_file_stays_the_only_type():
    header = ["Patient ID", "Measure Date", "Head BMD", "L1-L4 BMD"]
    cfg = load_dexa_config("lunar")
    assert detect_scan_types(header, "x_Total_Body.txt", cfg) == ("total_body",)
    assert detect_scan_types(header, "x.txt", cfg) == ("total_body",)


def _hologic_with_header(header: list[str], rows: list[list[str]]):
    text = "\n".join(",".join(r) for r in [header, *rows]) + "\n"
    return parse_dexa_file(
        text.encode(), file_sha256="s", vendor="hologic", file_name="apex.csv",
        pseudonymize=fake_pseudonymize,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("header", "row", "reason"),
    [
        # the APEX database table names the patient PATIENT_KEY: the column is missing, not empty
        (["PATIENT_KEY", "SCAN_DATE", "L1L4_BMD"], ["P1", "01/10/2023", "1.0"], "file lacks columns ['PAT_ID']"),
        (["PAT_ID", "SCAN_DATE", "TOT_BMD", "TOT_Tscore"], ["P1", "01/10/2023", "1.0", "-1"],
         "no column of the file is a BMD, T-score or Z-score column"),
        (["PAT_ID", "SCAN_DATE", "SIDE", "NECK_BMD", "NECK_BMD"], ["P1", "01/10/2023", "Left", "0.8", "0.9"],
         "columns ['NECK_BMD'] appear more than once"),
    ],
)  # fmt: skip
def test_a_header_no_row_can_be_read_from_rejects_every_row_with_why(header, row, reason):
    res = _hologic_with_header(header, [row, row])
    assert res.rows.height == 0
    assert [(r.position, r.check_name) for r in res.rejects] == [
        ("line 2", "unparseable_value"),
        ("line 3", "unparseable_value"),
    ]
    assert all(reason in r.reason for r in res.rejects)


def test_apex_scan_type_codes_name_the_hip_side():
    # APEX's ScanAnalysis.SCAN_TYPE: 2 left hip, 3 right hip, no side column
    rows = [
        {**PERSON, "SCAN_DATE": "01/10/2023", "SCAN_TYPE": code, "NECK_BMD": bmd}
        for code, bmd in (("2", "0.801"), ("3", "0.822"))
    ]
    res = parse_dexa_file(
        hologic_bytes(rows), file_sha256="s", vendor="hologic", file_name="apex.csv",
        pseudonymize=fake_pseudonymize,
    )  # fmt: skip
    assert res.rejects == []
    got = sorted(res.rows.select("site", "side", "bmd_g_cm2").rows())
    assert got == [("femoral_neck", "left", 0.801), ("femoral_neck", "right", 0.822)]


def test_a_file_with_another_delimiter_is_told_so():
    # a European re-save with ';': the header is one column, every configured one "lacks"
    text = "PAT_ID;SCAN_DATE;SCAN_TYPE;L1L4_BMD\nP1;01/10/2023;Spine;1,0\n"
    res = parse_dexa_file(
        text.encode(), file_sha256="s", vendor="hologic", file_name="apex.csv",
        pseudonymize=fake_pseudonymize,
    )  # fmt: skip
    [reject] = res.rejects
    assert "its header reads as one column holding ';': is the file ';'-separated?" in reject.reason


def test_the_delimiter_named_is_the_one_the_header_holds_most():
    # a header of four ','-separated names, one of which holds a ';': ',' is the separator
    reason = textio.lacking_columns(
        ["PAT_ID,SCAN_DATE,SCAN_TYPE,L1;L4_BMD"], ["PAT_ID", "SCAN_DATE"]
    )
    assert "holding ',': is the file ','-separated?" in reason


def test_an_l2_l4_bmd_alone_is_no_row():
    row = {**PERSON, "SCAN_DATE": "01/10/2023", "SCAN_TYPE": "Spine", "L2L4_BMD": "1.110"}
    res = parse_dexa_file(
        hologic_bytes([row]), file_sha256="s", vendor="hologic", file_name="apex.csv",
        pseudonymize=fake_pseudonymize,
    )  # fmt: skip
    assert res.rows.height == 0
    assert [(r.position, r.check_name) for r in res.rejects] == [("line 2", "unparseable_value")]


def test_lunar_export_resaved_as_utf8_without_bom_is_read():
    data = lunar_bytes(SINGLE_FEMUR_HEADER, [SINGLE_FEMUR_ROW])[2:].decode("utf-16-le").encode()
    res = parse_dexa_file(
        data, file_sha256="s", vendor="lunar", file_name="P9_Left_Femur.txt",
        pseudonymize=fake_pseudonymize,
    )  # fmt: skip
    assert set(site_rows(res, 2)) == {("femoral_neck", "left"), ("total_hip", "left")}


@pytest.mark.parametrize(
    ("cells", "mark"),
    [
        ([("t_score", "1,364")], "."),  # thousands or a decimal: no telling, as before
        ([("bmd", "0,874"), ("t_score", "1,364")], ","),  # 0,874 can only be a decimal comma
        ([("t_score", "-1,2"), ("bmd", "")], ","),
        ([("z_score", "1,0345")], ","),
        ([("bmd", "0,874"), ("bmd", "0.9")], "."),  # a decimal point anywhere: decimal-point
        ([], "."),
        # a g/cm² BMD of 1,002 cannot be 1002: every BMD of a file ≥ 1 and no score exported
        ([("bmd", "1,002"), ("l2_l4_bmd", "1,140 g/cm²")], ","),
        ([("bmd", "1,364 mg/cm2")], "."),  # in mg/cm² it is one thousand three hundred …
        ([("bmd", "1,002"), ("t_score", "0.5")], "."),
    ],
)
def test_file_decimal(cells, mark):
    assert file_decimal(cells) == mark


def test_lunar_decimal_comma_export_reads_every_value_the_same_way():
    row = {**SINGLE_FEMUR_ROW, "Neck BMD": "0,812", "Neck T-Score": "-1,6", "Total BMD": "1,034"}
    res = parse_lunar(SINGLE_FEMUR_HEADER, [row], "P9_Left_Femur.txt")
    rows = site_rows(res, 2)
    assert rows[("femoral_neck", "left")]["bmd_g_cm2"] == 0.812
    assert rows[("femoral_neck", "left")]["t_score"] == -1.6
    assert rows[("total_hip", "left")]["bmd_g_cm2"] == 1.034  # not 1034
    # the same with every BMD ≥ 1 and no score exported: the BMDs alone tell the comma
    row = {**SINGLE_FEMUR_ROW, "Neck BMD": "1,002", "Neck T-Score": "", "Total BMD": "1,034"}
    rows = site_rows(parse_lunar(SINGLE_FEMUR_HEADER, [row], "P9_Left_Femur.txt"), 2)
    assert rows[("femoral_neck", "left")]["bmd_g_cm2"] == 1.002
    assert rows[("total_hip", "left")]["bmd_g_cm2"] == 1.034


@pytest.mark.parametrize(
    "cell",
    ["05/02/2023", "05/02/2023 10:41:07 AM", "05/02/2023 2:05 PM", "02.05.2023", "2023-05-02"],
)
def test_scan_dates_as_the_vendors_write_them(cell):
    """Slashes are month/day (US), dots day.month (European): all 2 May 2023."""
    row = {**SINGLE_FEMUR_ROW, "Measure Date": cell}
    res = parse_lunar(SINGLE_FEMUR_HEADER, [row], "P9_Left_Femur.txt")
    assert res.rejects == []
    assert set(res.rows["scan_date"]) == {dt.date(2023, 5, 2)}
    hip = {**PERSON, "SCAN_DATE": cell, "SCAN_TYPE": "Left Hip", "NECK_BMD": "0.850"}
    res = parse_dexa_file(
        hologic_bytes([hip]), file_sha256="s", vendor="hologic", file_name="apex.csv",
        pseudonymize=fake_pseudonymize,
    )  # fmt: skip
    assert set(res.rows["scan_date"]) == {dt.date(2023, 5, 2)}
