"""CSV lab exports: mixed good/bad rows, value rules of docs/feeds.md, southlab-style files.

Expected values are worked out by hand in the comments (E2 pg/mL × 3.671 = pmol/L,
T ng/dL × 0.03467 = nmol/L, DOMAIN.md).
"""

from __future__ import annotations

import datetime as dt
import textwrap

import pytest
import yaml

from schemas.staging import StgLabResult, columns_of
from transforms import textio
from transforms.csv_labs import lab_csv_config_from_dict, load_lab_csv_config, parse_lab_csv


def fake_pseudonymize(namespace: str, identifier: str) -> str:
    """Shows what the parser passed (tests only; the real one is an HMAC)."""
    return f"{namespace}|{identifier}"


NORTH = {
    "source": "northlab",
    "patient_id_system": "NORTH_CLINIC",
    "delimiter": ",",
    "encoding": "utf-8",
    "decimal": ".",
    "timezone": "America/New_York",
    "datetime_formats": ["%Y-%m-%d %H:%M", "%Y-%m-%d"],
    "na_values": ["", "N/A", "NA", "-"],
    "columns": {
        "patient_id": "MRN",
        "patient_name": "PatientName",
        "birth_date": "DOB",
        "collected_at": "CollectionDateTime",
        "code": "TestCode",
        "code_text": "TestName",
        "value": "Result",
        "unit": "Units",
        "reference_range": "RefRange",
        "abnormal_flags": "Flag",
        "order_id": "AccessionNo",
        "result_status": "Status",
        "loinc": None,
        "detection_limit": None,
    },
    "code_system": "L",
    "local_codes": {"E2SENS": "2243-4", "TESTO": "2986-8"},
}

NORTH_CSV = textwrap.dedent(
    """\
    MRN,PatientName,DOB,CollectionDateTime,TestCode,TestName,Result,Units,RefRange,Flag,AccessionNo,Status
    MRN001,DOE^JOHN,1958-03-12,2023-01-05 08:30,E2SENS,Estradiol,18.4,pg/mL,10-40,N,ACC1,F
    MRN001,DOE^JOHN,1958-03-12,2023-01-05 08:30,E2SENS,Estradiol,<5,pg/mL,10-40,L,ACC1,
    MRN001,,,2023-01-05 08:30,TESTO,Testosterone,512,ng/dL,264-916,,ACC1,F
    ,ROE^JANE,1960-01-01,2023-01-06,E2SENS,Estradiol,20,pg/mL,,,ACC2,F
    MRN002,,,2023-01-06,E2SENS,Estradiol,abc,pg/mL,,,ACC3,F
    MRN002,,,2023-01-06,E2SENS,Estradiol,N/A,,,,ACC3,F
    MRN002,,,2023-01-06,E2SENS,Estradiol,5.0 pg/mL,,,,ACC3,F
    MRN002,,,2023-01-06,E2SENS,Estradiol,12,mg/dL,,,ACC3,F
    MRN002,,,2023-01-06,E2SENS,Estradiol,5.0 pg/mL,ng/dL,,,ACC3,F
    MRN002,,,31/02/2023,E2SENS,Estradiol,12,pg/mL,,,ACC3,F
    MRN002,,,2023-01-06,TESTO,Testosterone,>1500,ng/dL,,H,ACC3,F
    MRN002,,,2023-01-06,XYZ,Mystery marker,12,foo,,,ACC3,F
    MRN002,,,2023-01-06,TESTO,Testosterone,,ng/dL,,,ACC3,C
    MRN002,,,2023-01-06,TESTO,Testosterone,400,ng/dL,,,ACC3,F,surplus
    """
)


@pytest.fixture
def north():
    cfg = lab_csv_config_from_dict(NORTH)
    return parse_lab_csv(
        NORTH_CSV.encode("utf-8"),
        file_sha256="sha-north",
        source_config=cfg,
        pseudonymize=fake_pseudonymize,
    )


def by_line(result, line: int) -> dict:
    rows = result.rows.filter(result.rows["position"] == f"line {line}").to_dicts()
    assert len(rows) == 1, f"line {line} not staged"
    return rows[0]


def test_columns_are_the_staging_contract(north):
    assert north.rows.schema == columns_of(StgLabResult)


def test_mixed_file_counts_and_reject_reasons(north):
    # 14 data rows (lines 2-15): 6 bad, 8 good
    assert north.received == 14
    assert [(r.position, r.check_name) for r in north.rejects] == [
        ("line 5", "missing_patient_id"),
        ("line 6", "unparseable_value"),  # abc
        ("line 9", "unknown_unit"),  # estradiol in mg/dL: no conversion
        ("line 10", "unparseable_value"),  # '5.0 pg/mL' with unit column ng/dL
        ("line 11", "unparseable_value"),  # 31/02/2023
        ("line 15", "unparseable_value"),  # 13 cells for 12 headers
    ]
    assert sorted(north.rows["position"].to_list(), key=textio.line_of) == [
        f"line {n}" for n in (2, 3, 4, 7, 8, 12, 13, 14)
    ]


def test_good_rows_hand_checked(north):
    r = by_line(north, 2)
    assert r["patient_key"] == "NORTH_CLINIC|MRN001"
    assert r["collected_at"] == dt.datetime(2023, 1, 5, 8, 30)
    assert (r["loinc_code"], r["analyte"], r["is_mapped"]) == ("2243-4", "estradiol", True)
    assert (r["value"], r["unit"], r["comparator"]) == (18.4, "pg/mL", None)
    assert (r["original_value"], r["original_unit"]) == ("18.4", "pg/mL")
    assert (r["reference_range"], r["abnormal_flags"], r["result_status"]) == ("10-40", "N", "F")
    assert (r["filler_order_number"], r["source_system"], r["file_sha256"]) == (
        "ACC1",
        "northlab",
        "sha-north",
    )
    assert r["birth_year"] == 1958

    censored = by_line(north, 3)  # '<5': comparator + limit; empty status → F
    assert (censored["value"], censored["comparator"], censored["detection_limit"]) == (
        5.0,
        "<",
        5.0,
    )
    assert censored["result_status"] == "F"

    testo = by_line(north, 4)
    assert (testo["loinc_code"], testo["value"], testo["unit"]) == ("2986-8", 512.0, "ng/dL")

    high = by_line(north, 12)  # '>1500': comparator '>', no detection limit
    assert (high["value"], high["comparator"], high["detection_limit"]) == (1500.0, ">", None)


def test_na_empty_and_value_with_unit_cells(north):
    na = by_line(north, 7)  # N/A → accepted, value NULL, unit not checked
    assert na["value"] is None and na["value_num_original"] is None
    assert na["original_value"] == "N/A" and na["is_mapped"]
    empty = by_line(north, 14)  # empty value → NULL; status as sent
    assert empty["value"] is None and empty["result_status"] == "C"
    cell_unit = by_line(north, 8)  # '5.0 pg/mL' with empty unit column: the cell's unit wins
    assert (cell_unit["value"], cell_unit["unit"], cell_unit["original_unit"]) == (
        5.0,
        "pg/mL",
        "pg/mL",
    )
    assert cell_unit["original_value"] == "5.0 pg/mL"


def test_unmapped_analyte_loads_as_sent(north):
    r = by_line(north, 13)
    assert (r["is_mapped"], r["loinc_code"], r["analyte"]) == (False, None, "Mystery marker")
    assert (r["value"], r["unit"]) == (12.0, "foo")


def test_identities_only_in_identity_list(north):
    ids = {i.identifier: i for i in north.identities}
    assert set(ids) == {"MRN001", "MRN002"}  # the row without id gives no identity
    assert (ids["MRN001"].family_name, ids["MRN001"].given_name) == ("DOE", "JOHN")
    assert ids["MRN001"].birth_date == "1958-03-12"
    assert ids["MRN001"].patient_key == "NORTH_CLINIC|MRN001"
    text = " ".join(f"{r.reason} {r.excerpt}" for r in north.rejects)
    for secret in ("MRN", "DOE", "ROE", "JANE", "1960-01-01"):
        assert secret not in text
    assert "PatientName" not in north.rows.columns


SOUTH = {
    "source": "southlab",
    "patient_id_system": "SOUTH_LAB",
    "delimiter": ";",
    "encoding": "iso-8859-1",
    "decimal": ",",
    "timezone": "Europe/Berlin",
    "datetime_formats": ["%d.%m.%Y %H:%M", "%d.%m.%Y"],
    "na_values": ["", "N/A", "-"],
    "columns": {
        "patient_id": "Patientennummer",
        "patient_name": "Name",
        "birth_date": "Geburtsdatum",
        "collected_at": "Entnahmedatum",
        "code": "Testcode",
        "code_text": "Testname",
        "value": "Ergebnis",
        "unit": "Einheit",
        "reference_range": "Referenzbereich",
        "abnormal_flags": "Kennzeichen",
        "order_id": "Auftragsnummer",
    },
    "code_system": "L",
    "local_codes": {"E2": "14715-7", "TT": "2986-8"},
}

SOUTH_CSV = (
    "Patientennummer;Name;Geburtsdatum;Entnahmedatum;Testcode;Testname;Ergebnis;Einheit;"
    "Referenzbereich;Kennzeichen;Auftragsnummer\r\n"
    "S-1001;Müller, Jürgen;12.03.1958;05.01.2023 08:30;E2;Östradiol;73,42;pmol/L;;;A1\r\n"
    "S-1001;Müller, Jürgen;12.03.1958;05.01.2023;E2;Östradiol;<18,355;pmol/L;;;A1\r\n"
    "S-1001;;;06.01.2023;E2;Östradiol;N/A;pmol/L;;;A2\r\n"
    "S-1001;;;06.01.2023;E2;Östradiol;;;;;A2\r\n"
    "S-1001;;;06.01.2023;E2;Östradiol;5,0 pg/mL;;;;A2\r\n"
    "S-1001;;;06.01.2023;TT;Testosteron;17,335;nmol/L;;;A2\r\n"
    "S-1002;;;45.13.2023;E2;Östradiol;10;pmol/L;;;A3\r\n"
    ";Schmidt, Anna;01.01.1960;06.01.2023;E2;Östradiol;10;pmol/L;;;A4\r\n"
    "S-1002;;;06.01.2023;E2;Östradiol;hämolytisch;pmol/L;;;A5\r\n"
)


@pytest.fixture
def south():
    return parse_lab_csv(
        SOUTH_CSV.encode("iso-8859-1"),
        file_sha256="sha-south",
        source_config=lab_csv_config_from_dict(SOUTH),
        pseudonymize=fake_pseudonymize,
    )


def test_southlab_latin1_semicolon_decimal_comma_pmol(south):
    assert south.received == 9
    assert [(r.position, r.check_name) for r in south.rejects] == [
        ("line 8", "unparseable_value"),  # 45.13.2023
        ("line 9", "missing_patient_id"),
        ("line 10", "unparseable_value"),  # 'hämolytisch'
    ]
    e2 = by_line(south, 2)
    # 73.42 pmol/L ÷ 3.671 = 20.00 pg/mL; dd.mm.yyyy HH:MM read as facility-local time
    assert e2["value"] == pytest.approx(20.0, rel=1e-12)
    assert (e2["unit"], e2["original_unit"], e2["loinc_code"]) == ("pg/mL", "pmol/L", "14715-7")
    assert e2["value_num_original"] == pytest.approx(73.42, rel=1e-15)
    assert e2["collected_at"] == dt.datetime(2023, 1, 5, 8, 30)
    assert e2["patient_key"] == "SOUTH_LAB|S-1001"
    assert e2["birth_year"] == 1958 and e2["source_text"] == "Östradiol"

    censored = by_line(south, 3)  # <18.355 pmol/L = <5.000 pg/mL
    assert censored["comparator"] == "<"
    assert censored["value"] == pytest.approx(5.0, rel=1e-12)
    assert censored["detection_limit"] == pytest.approx(5.0, rel=1e-12)
    assert censored["collected_at"] == dt.datetime(2023, 1, 5)

    assert by_line(south, 4)["value"] is None  # N/A
    assert by_line(south, 5)["value"] is None  # empty cell
    mass = by_line(south, 6)  # '5,0 pg/mL' in one cell: decimal comma + the cell's unit
    assert (mass["value"], mass["unit"], mass["original_unit"]) == (5.0, "pg/mL", "pg/mL")
    testo = by_line(south, 7)  # 17.335 nmol/L ÷ 0.03467 = 500 ng/dL
    assert testo["value"] == pytest.approx(500.0, rel=1e-12) and testo["unit"] == "ng/dL"


def test_southlab_identity_decoded_from_latin1(south):
    ids = {i.identifier: i for i in south.identities}
    assert (ids["S-1001"].family_name, ids["S-1001"].given_name) == ("Müller", "Jürgen")
    assert ids["S-1001"].birth_date == "1958-03-12"
    assert ids["S-1001"].namespace == "SOUTH_LAB"


def test_quoted_multiline_cell_keeps_physical_line_numbers():
    cfg = lab_csv_config_from_dict(NORTH)
    data = (
        b"MRN,CollectionDateTime,TestCode,Result,Units,RefRange\n"
        b'M1,2023-01-05,E2SENS,10,pg/mL,"10-40\nadult men"\n'  # lines 2-3
        b"M1,2023-01-06,E2SENS,oops,pg/mL,\n"  # line 4
        b"\n"  # blank line 5: not a record
        b"M1,2023-01-07,E2SENS,11,pg/mL,\n"  # line 6
    )
    res = parse_lab_csv(data, file_sha256="s", source_config=cfg, pseudonymize=fake_pseudonymize)
    assert res.rows["position"].to_list() == ["line 2", "line 6"]
    assert res.rows["reference_range"][0] == "10-40\nadult men"
    assert [(r.position, r.check_name) for r in res.rejects] == [("line 4", "unparseable_value")]


def test_bom_and_offset_timestamps():
    cfg = lab_csv_config_from_dict(NORTH)  # America/New_York
    data = "\ufeffMRN,CollectionDateTime,TestCode,Result,Units\nM1,2023-07-05T12:30:00+00:00,E2SENS,10,pg/mL\n"
    res = parse_lab_csv(
        data.encode("utf-8"), file_sha256="s", source_config=cfg, pseudonymize=fake_pseudonymize
    )
    # 12:30 UTC = 08:30 EDT (UTC-4 in July); values without offset are already local
    assert res.rows["collected_at"].to_list() == [dt.datetime(2023, 7, 5, 8, 30)]


def test_utf16_file_and_row_width():
    cfg = lab_csv_config_from_dict(NORTH)
    text = (
        "MRN,CollectionDateTime,TestCode,Result,Units\r\n"
        "M1,2023-01-05,E2SENS,10,pg/mL\r\n"
        "M1,2023-01-05,E2SENS,7,3,pg/mL\r\n"  # an unquoted decimal comma: one cell too many
        "M1,2023-01-05,E2SENS,11\r\n"  # one cell too few: cells may have shifted
    )
    res = parse_lab_csv(
        b"\xff\xfe" + text.encode("utf-16-le"),
        file_sha256="s",
        source_config=cfg,
        pseudonymize=fake_pseudonymize,
    )
    assert res.rows["value"].to_list() == [10.0]
    assert [(r.position, r.check_name) for r in res.rejects] == [
        ("line 3", "unparseable_value"),
        ("line 4", "unparseable_value"),
    ]


def test_misaligned_row_reject_quotes_no_cell():
    cfg = lab_csv_config_from_dict(NORTH)
    header = NORTH_CSV.splitlines()[0]
    # 'DOE, JOHN, JR' written without quotes: two extra cells shift the birth date and the
    # collection time into other columns
    row = "MRN009,DOE, JOHN, JR,1949-12-31,2023-01-05 08:30,E2SENS,Estradiol,18.4,pg/mL,,,A9,F"
    res = parse_lab_csv(
        f"{header}\n{row}\n".encode(),
        file_sha256="s",
        source_config=cfg,
        pseudonymize=fake_pseudonymize,
    )
    assert res.rows.height == 0 and res.identities == []
    (reject,) = res.rejects
    assert (reject.position, reject.check_name, reject.excerpt) == (
        "line 2",
        "unparseable_value",
        None,
    )
    for secret in ("MRN009", "DOE", "JOHN", "1949", "12-31"):
        assert secret not in reject.reason


def test_file_without_a_required_column_rejects_every_row():
    cfg = lab_csv_config_from_dict(NORTH)
    data = b"MRN,CollectionDateTime,TestCode,Units\nM1,2023-01-05,E2SENS,pg/mL\nM2,2023-01-05,E2SENS,pg/mL\n"
    res = parse_lab_csv(data, file_sha256="s", source_config=cfg, pseudonymize=fake_pseudonymize)
    assert res.rows.height == 0 and res.rows.schema == columns_of(StgLabResult)
    assert [(r.position, r.check_name) for r in res.rejects] == [
        ("line 2", "unparseable_value"),
        ("line 3", "unparseable_value"),
    ]
    assert "Result" in res.rejects[0].reason


def test_header_only_file():
    res = parse_lab_csv(
        b"MRN,CollectionDateTime,TestCode,Result\n",
        file_sha256="s",
        source_config=lab_csv_config_from_dict(NORTH),
        pseudonymize=fake_pseudonymize,
    )
    assert res.received == 0 and res.rows.schema == columns_of(StgLabResult)


def test_loinc_column_and_detection_limit_column():
    raw = {
        **NORTH,
        "columns": {**NORTH["columns"], "loinc": "LOINC", "detection_limit": "LOD"},
        "local_codes": {},
    }
    data = (
        b"MRN,CollectionDateTime,TestCode,Result,Units,LOINC,LOD\n"
        b"M1,2023-01-05,LOCALE2,<24,pg/mL,2243-4,24\n"
        b"M1,2023-01-05,LOCALE2,30,pmol/L,14715-7,\n"
    )
    res = parse_lab_csv(
        data,
        file_sha256="s",
        source_config=lab_csv_config_from_dict(raw),
        pseudonymize=fake_pseudonymize,
    )
    a, b = res.rows.to_dicts()
    assert (a["loinc_code"], a["value"], a["detection_limit"], a["comparator"]) == (
        "2243-4",
        24.0,
        24.0,
        "<",
    )
    assert b["loinc_code"] == "14715-7"
    assert b["value"] == pytest.approx(30 / 3.671, rel=1e-12)  # 8.172 pg/mL


def test_load_config_from_a_directory(tmp_path):
    (tmp_path / "testlab.yaml").write_text(yaml.safe_dump(SOUTH), encoding="utf-8")
    cfg = load_lab_csv_config("testlab", tmp_path)
    assert (cfg.source, cfg.delimiter, cfg.decimal, cfg.encoding) == (
        "southlab",
        ";",
        ",",
        "iso-8859-1",
    )
    assert cfg.local_codes == {"E2": "14715-7", "TT": "2986-8"}
    assert cfg.header("collected_at") == "Entnahmedatum"
    # a config root holding sources/lab_csv/<source>.yaml works too
    nested = tmp_path / "root" / "sources" / "lab_csv"
    nested.mkdir(parents=True)
    (nested / "other.yaml").write_text(yaml.safe_dump(NORTH), encoding="utf-8")
    assert load_lab_csv_config("other", tmp_path / "root").source == "northlab"


def test_config_without_required_columns_is_an_error():
    raw = {**NORTH, "columns": {"patient_id": "MRN", "code": "TestCode"}}
    with pytest.raises(ValueError, match="collected_at"):
        lab_csv_config_from_dict(raw)


@pytest.mark.parametrize(
    ("text", "decimal", "expected"),
    [
        ("<5", ".", (5.0, "<", None)),
        ("<=5", ".", (5.0, "<=", None)),
        (">300", ".", (300.0, ">", None)),
        ("5.0 pg/mL", ".", (5.0, None, "pg/mL")),
        ("7,3", ",", (7.3, None, None)),
        ("5,0 pg/mL", ",", (5.0, None, "pg/mL")),
        ("1,364", ".", (1364.0, None, None)),
        ("0,987", ".", (0.987, None, None)),  # no thousands group starts with 0
        ("0.450", ",", (0.45, None, None)),
        ("1.364,5", ",", (1364.5, None, None)),
        ("185.2 lbs", ".", (185.2, None, "lbs")),
        ("-1.2", ".", (-1.2, None, None)),
        ("\u22121.2", ".", (-1.2, None, None)),
    ],
)
def test_parse_number(text, decimal, expected):
    n = textio.parse_number(text, decimal)
    assert (n.value, n.comparator, n.unit) == expected


@pytest.mark.parametrize("text", ["abc", "hemolyzed", "1.2.3", "10 20", "5 - 10", ""])
def test_parse_number_rejects(text):
    assert textio.parse_number(text, ".") is None


NORTH_HEADER = NORTH_CSV.splitlines()[0]


def parse_north_lines(lines: list[str], header_line: str = NORTH_HEADER, **config):
    """``header_line`` (northlab's), then ``lines`` (line 2 onwards), parsed with NORTH (+
    ``config``)."""
    cfg = lab_csv_config_from_dict({**NORTH, **config})
    text = "\n".join([header_line, *lines])
    return parse_lab_csv(
        text.encode(), file_sha256="s", source_config=cfg, pseudonymize=fake_pseudonymize
    )


def test_status_words_become_table_0085_codes():
    # Final/corrected/… as some exports write them; a source's own word; an unknown word is
    # kept upper-cased for validation to put aside; an empty cell is the source's default F.
    cells = ["Final", "corrected", "Entered-in-error", " prelim ", "VERIFIED", "Z9", "", "c"]
    res = parse_north_lines(
        [
            f"MRN001,,,2023-01-05 08:30,E2SENS,Estradiol,18,pg/mL,,,ACC{i},{s}"
            for i, s in enumerate(cells)
        ],
        result_status_words={"Verified": "f"},
    )
    assert res.rejects == []
    assert res.rows["result_status"].to_list() == ["F", "C", "W", "P", "F", "Z9", "F", "C"]


def test_an_unclosed_quote_loses_no_row():
    # Line 3's name cell opens a quote that is never closed: the csv module alone would join
    # lines 3-6 into one record of the wrong width and lines 4-6 would vanish. Line 3 is put
    # aside; 4, 5 and 6 are rows of their own. A quoted name broken over lines 7-8 that has
    # a comma of its own is one good row (the right width), not an unclosed quote.
    res = parse_north_lines(
        [
            "M1,,,2023-01-05 08:30,E2SENS,E2,10,pg/mL,,,A1,F",  # 2
            'M1,"Doe, John,,2023-01-06 08:30,E2SENS,E2,11,pg/mL,,,A2,F',  # 3
            "M1,,,2023-01-07 08:30,E2SENS,E2,12,pg/mL,,,A3,F",  # 4
            "M1,,,2023-01-08 08:30,E2SENS,E2,13,pg/mL,,,A4,F",  # 5
            "M1,,,2023-01-09 08:30,E2SENS,E2,14,pg/mL,,,A5,F",  # 6
            'M1,"DOE',  # 7
            'JOHN, JR",1958-03-12,2023-01-10 08:30,E2SENS,E2,15,pg/mL,,,A6,F',  # 8
        ]
    )
    assert res.received == 6
    assert [(r.position, r.check_name) for r in res.rejects] == [("line 3", "unparseable_value")]
    assert "quote" in res.rejects[0].reason and "Doe" not in res.rejects[0].reason
    assert res.rows["position"].to_list() == [f"line {n}" for n in (2, 4, 5, 6, 7)]
    assert res.rows["value_num_original"].to_list() == [10.0, 12.0, 13.0, 14.0, 15.0]
    assert set(res.rows["patient_key"].to_list()) == {"NORTH_CLINIC|M1"}


def test_a_quote_closed_on_a_later_line_loses_no_row():
    # the stray quote of line 2 is "closed" by the quote inside line 3's text: lines 2-3
    # would be one record of the wrong width; 2 is put aside, 3 is read alone (a quote
    # inside a cell is text)
    res = parse_north_lines(
        [
            'M1,"Doe,,2023-01-06 08:30,E2SENS,E2,11,pg/mL,,,A2,F',  # 2
            'M1,,,2023-01-07 08:30,E2SENS,E2"x,12,pg/mL,,,A3,F',  # 3
        ]
    )
    assert [r.position for r in res.rejects] == ["line 2"]
    assert res.rows["position"].to_list() == ["line 3"]


def test_a_run_on_of_the_right_width_by_chance_loses_no_row():
    # line 2's stray quote runs to the quote of line 4; by chance the joined record has the
    # header's 12 cells. It swallowed line 3, a whole row by itself: still a run-on.
    res = parse_north_lines(
        [
            'M1,"Doe,,2023-01-06 08:30,E2SENS,E2,11,pg/mL,,,A2,F',  # 2
            "M1,,,2023-01-07 08:30,E2SENS,E2,12,pg/mL,,,A3,F",  # 3
            'M1"x,,2023-01-08 08:30,E2SENS,E2,13,pg/mL,,,A4',  # 4
        ]
    )
    assert [r.position for r in res.rejects][:1] == ["line 2"]
    assert "quote" in res.rejects[0].reason
    assert "line 3" in res.rows["position"].to_list()
    assert 12.0 in res.rows["value_num_original"].to_list()


def test_a_run_on_past_the_csv_field_limit_loses_no_row():
    # a stray quote with > 128 KiB of rows after it: the csv module gives up on the field;
    # the line is put aside and every row after it is read (the file was unreadable before)
    rows = [f"M1,,,2023-01-07 08:30,E2SENS,E2,{n},pg/mL,,,A{n},F" for n in range(3000)]
    res = parse_north_lines(['M1,"Doe,,2023-01-06 08:30,E2SENS,E2,11,pg/mL,,,A2,F', *rows])
    assert [(r.position, "quote" in r.reason) for r in res.rejects] == [("line 2", True)]
    assert res.rows.height == 3000 and res.received == 3001


def test_a_quote_that_never_closes_or_closes_in_a_whole_row_loses_no_row():
    # line 2's stray quote (its last cell) runs to the end of the file: the csv module gives
    # one record of the right width holding line 3; line 3 is a row of its own
    res = parse_north_lines(
        [
            'M1,,,2023-01-06 08:30,E2SENS,E2,11,pg/mL,,,A2,"',  # 2
            "M2,,,2023-01-07 08:30,E2SENS,E2,12,pg/mL,,,A3,F",  # 3
        ]
    )
    assert [r.position for r in res.rejects] == ["line 2"]
    assert res.rows["position"].to_list() == ["line 3"]
    assert res.rows["value_num_original"].to_list() == [12.0]
    # the stray quote closes inside line 3, a whole row with a quoted cell of its own
    res = parse_north_lines(
        [
            'M1,"Doe,,2023-01-06 08:30,E2SENS,E2,11,pg/mL,,,A2,F',  # 2
            'M2,"Cher",,2023-01-07 08:30,E2SENS,E2,12,pg/mL,,,A3,F',  # 3
            "M3,,,2023-01-08 08:30,E2SENS,E2,13,pg/mL,,,A4,F",  # 4
        ]
    )
    assert [r.position for r in res.rejects] == ["line 2"]
    assert res.rows["position"].to_list() == ["line 3", "line 4"]


def test_a_stray_quote_in_the_header_loses_no_data_line():
    header = NORTH_HEADER.replace("PatientName", '"PatientName')
    res = parse_north_lines(
        [
            'MRN001,"DOE, JOHN",1958-03-12,2023-01-05 08:30,E2SENS,Estradiol,18.4,pg/mL,10-40,N,A1,F',
            "MRN002,,1960-01-01,2023-01-06 08:30,E2SENS,Estradiol,25,pg/mL,10-40,N,A2,F",
        ],
        header_line=header,
    )
    assert res.rejects == []
    assert res.rows["position"].to_list() == ["line 2", "line 3"]
    assert res.rows["value"].to_list() == [18.4, 25.0]


def test_the_same_stray_quote_on_two_rows_keeps_them_apart():
    """Joined, the two rows would have the header's width: the first would load holding the
    second's accession number, and the second patient's row would vanish."""
    res = parse_north_lines(
        [
            'M3,Doe John,1958-03-12,2023-01-05 08:30,E2SENS,Estradiol,18.4,pg/mL,"<40,N,A3,F',
            'M4,Roe Jane,1960-01-01,2023-01-06 08:30,E2SENS,Estradiol,25.0,pg/mL,"<40,N,A4,F',
            "M5,,,2023-01-07 08:30,E2SENS,Estradiol,30.0,pg/mL,<40,N,A5,F",
        ]
    )
    assert res.rows["position"].to_list() == ["line 4"]
    assert [(r.position, r.check_name) for r in res.rejects] == [
        ("line 2", "unparseable_value"),
        ("line 3", "unparseable_value"),
    ]
    assert all("quote" in r.reason for r in res.rejects)


def test_a_quoted_cell_with_line_breaks_still_reads_as_one_cell():
    res = parse_north_lines(
        [
            'M3,"Doe\nJohn",1958-03-12,2023-01-05 08:30,E2SENS,Estradiol,18.4,pg/mL,"<40\nadult",N,A3,F'
        ]
    )
    assert res.rejects == []
    assert res.rows["position"].to_list() == ["line 2"]


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-08:00"]
)
def test_null_date_placeholders_reject_their_row_only(when):
    """.NET writes these for a null date; shifted to New York they leave the calendar."""
    res = parse_north_lines(
        [
            f"M1,,,{when},E2SENS,Estradiol,18.4,pg/mL,,,A1,F",
            "M1,,,2023-01-05 08:30,E2SENS,Estradiol,20.0,pg/mL,,,A2,F",
        ]
    )
    assert res.rows["position"].to_list() == ["line 3"]
    assert [(r.position, r.check_name) for r in res.rejects] == [("line 2", "unparseable_value")]


def test_infinite_value_and_no_break_space_unit():
    res = parse_north_lines(
        [
            "M1,,,2023-01-05 08:30,E2SENS,Estradiol,1e400,pg/mL,,,A1,F",
            "M1,,,2023-01-05 08:30,E2SENS,Estradiol,55,pmol\u00a0/L,,,A2,F",
        ]
    )
    assert [(r.position, r.check_name) for r in res.rejects] == [("line 2", "unparseable_value")]
    # 55 pmol/L × 0.27238 = 14.98 pg/mL (DOMAIN.md: 1 pg/mL = 3.671 pmol/L)
    assert by_line(res, 3)["value"] == pytest.approx(55 / 3.671, rel=1e-3)


def test_a_column_read_twice_rejects_every_row_with_why():
    res = parse_north_lines(
        ["M1,,,2023-01-05 08:30,E2SENS,Estradiol,18.4,pg/mL,,,A1,F,19"],
        header_line=NORTH_HEADER + ",Result",
    )
    assert res.rows.height == 0
    [reject] = res.rejects
    assert "columns ['Result'] appear more than once" in reject.reason


@pytest.mark.parametrize(
    ("value", "unit", "number", "comparator", "flag", "stored_unit"),
    [
        ("45.1 H", "pg/mL", 45.1, None, "H", "pg/mL"),
        ("<3 L", "", 3.0, "<", "L", None),
        ("7.2 (HH)", "pg/mL", 7.2, None, "HH", "pg/mL"),
        ("12*", "pg/mL", 12.0, None, "*", "pg/mL"),
    ],
)
def test_a_flag_after_the_number_is_a_flag_not_a_unit(
    value, unit, number, comparator, flag, stored_unit
):
    res = parse_north_lines([f"M1,,,2023-01-05 08:30,E2SENS,Estradiol,{value},{unit},,,A1,F"])
    if stored_unit is None:  # no unit at all: the estradiol row is rejected for that, not for 'L'
        [reject] = res.rejects
        assert "'L'" not in reject.reason
        return
    assert res.rejects == []
    row = by_line(res, 2)
    assert (row["value_num_original"], row["comparator"], row["abnormal_flags"], row["original_unit"]) == (
        number, comparator, flag, stored_unit,
    )  # fmt: skip


def test_a_header_repeated_inside_the_file_says_so():
    res = parse_north_lines(
        [
            "M1,,,2023-01-05 08:30,E2SENS,Estradiol,18.4,pg/mL,,,A1,F",
            NORTH_HEADER,
            "M2,,,2023-01-06 08:30,E2SENS,Estradiol,20,pg/mL,,,A2,F",
        ]
    )
    assert res.rows["position"].to_list() == ["line 2", "line 4"]
    [reject] = res.rejects
    assert (reject.position, "header line again" in reject.reason) == ("line 3", True)


def test_standard_no_result_words_are_accepted_without_a_value():
    # a lab's codes for "no result was produced" (test not performed, quantity not
    # sufficient, see note) are accepted as an NA is: value NULL, the text kept as sent,
    # whatever the source's own na_values; any other text is still no number
    cells = ["TNP", "qns", "See note", "Test not performed", "Not done", "hemolyzed"]
    res = parse_north_lines(
        [
            f"MRN001,,,2023-01-05 08:30,E2SENS,Estradiol,{c},pg/mL,,,ACC{i},F"
            for i, c in enumerate(cells)
        ],
        na_values=[""],
    )
    assert res.rows["original_value"].to_list() == cells[:5]
    assert res.rows["value"].to_list() == [None] * 5
    assert [(r.position, r.check_name) for r in res.rejects] == [("line 7", "unparseable_value")]


def test_status_words_of_ehr_result_exports():
    # Epic / Cerner style status words
    cells = ["Final result", "Edited Result - FINAL", "Preliminary result", "Auth (Verified)",
             "Resulted", "In Error", "Modified"]  # fmt: skip
    res = parse_north_lines(
        [
            f"MRN001,,,2023-01-05 08:30,E2SENS,Estradiol,18,pg/mL,,,ACC{i},{s}"
            for i, s in enumerate(cells)
        ]
    )
    assert res.rows["result_status"].to_list() == ["F", "C", "P", "F", "F", "W", "C"]


def test_a_catalogued_loinc_in_the_code_column_is_used_after_the_local_codes():
    # `2243-4` sent as the test code of a local-code export maps to estradiol (as an HL7
    # OBX-3 without a coding system does); a configured local code still wins
    res = parse_north_lines(
        [
            "MRN001,,,2023-01-05 08:30,2243-4,Estradiol,18,pg/mL,,,A1,F",
            "MRN001,,,2023-01-05 08:30,83096-8,Estradiol IA,73.42,pmol/L,,,A2,F",
            "MRN001,,,2023-01-05 08:30,9999-9,Other,300,ng/dL,,,A3,F",
        ],
        local_codes={"E2SENS": "2243-4", "TESTO": "2986-8", "9999-9": "2986-8"},
    )
    rows = res.rows.select("loinc_code", "analyte", "is_mapped", "value", "unit").rows()
    assert rows[0] == ("2243-4", "estradiol", True, 18.0, "pg/mL")
    assert rows[1][:3] == ("83096-8", "estradiol", True)
    assert rows[1][3] == pytest.approx(73.42 / 3.671) and rows[1][4] == "pg/mL"
    assert rows[2][:3] == ("2986-8", "testosterone_total", True)


def test_excel_sep_line_names_the_delimiter_and_is_no_header():
    # Excel writes `sep=;` above the header of a file it should open with that delimiter:
    # the line is skipped (line numbers stay physical) and its delimiter is the file's
    rows = ["M1;;;2023-01-05 08:30;E2SENS;Estradiol;18,4;pg/mL;;;A1;F"]
    res = parse_north_lines(rows, header_line="sep=;\n" + NORTH_HEADER.replace(",", ";"))
    assert res.rejects == []
    assert res.rows.select("position", "value").rows() == [("line 3", 18.4)]
    res = parse_north_lines(
        ["M1,,,2023-01-05 08:30,E2SENS,Estradiol,18.4,pg/mL,,,A1,F"],
        header_line='"sep=,"\n' + NORTH_HEADER,
    )
    assert res.rejects == [] and res.rows["position"].to_list() == ["line 3"]


def test_a_repeated_header_with_its_own_byte_order_mark_is_told_as_a_header():
    # two UTF-8 exports with a BOM each, joined: the second header starts with U+FEFF
    res = parse_north_lines(
        [
            "M1,,,2023-01-05 08:30,E2SENS,Estradiol,18.4,pg/mL,,,A1,F",
            "\ufeff" + NORTH_HEADER,
            "M2,,,2023-01-06 08:30,E2SENS,Estradiol,20,pg/mL,,,A2,F",
        ],
        header_line="\ufeff" + NORTH_HEADER,
    )
    assert res.rows["position"].to_list() == ["line 2", "line 4"]
    [reject] = res.rejects
    assert (reject.position, "header line again" in reject.reason) == ("line 3", True)
