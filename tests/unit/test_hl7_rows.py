"""OBX → staged rows, one quirk per test, each with its own message and values worked by hand.

The pseudonymizer is a readable stand-in (``K(namespace|identifier)``) so that the choice of
namespace and identifier can be checked; the catalog is the project's config/analytes.csv.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from schemas.staging import RESULT_STATUSES, StgLabResult, columns_of
from transforms.hl7 import Hl7Config, iter_parse_hl7_file, load_hl7_config, parse_hl7_file
from transforms.hl7 import config as hl7_config
from transforms.records import MALFORMED_MESSAGE, MISSING_PATIENT_ID, UNKNOWN_UNIT

NY = Hl7Config(timezone="America/New_York")
MSH = (
    "MSH|^~\\&|LABWH_LIS|NORTH_CLINIC|LABWH|LABWH|20230105093000-0500||ORU^R01^ORU_R01|{id}|P|2.5.1"
)
PID = "PID|1||MRN42^^^NORTH_CLINIC^MR||DOE^JOHN||19580312|M"
OBR = "OBR|1|PLC1|FIL1^LABWH_LIS|HORM^Hormone panel^L|||20230105083000-0500||||||||||||||||||F"
# OBR-25 (result status) = F: 18 separators after OBR-7
E2 = "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||18.4|pg/mL|10-40|N|||F|||20230105083000-0500"


def pseudo(namespace: str, identifier: str) -> str:
    return f"K({namespace}|{identifier})"


def message(*segments: str, control_id: str = "MSG1") -> str:
    return "\r".join([MSH.format(id=control_id), *segments]) + "\r"


def parse(text: str | bytes, config: Hl7Config | None = NY):
    data = text.encode("utf-8") if isinstance(text, str) else text
    result = parse_hl7_file(data, file_sha256="f" * 64, pseudonymize=pseudo, config=config)
    assert result.rows.schema == pl.Schema(columns_of(StgLabResult))
    return result


def clean_rows(text: str, *columns: str) -> list[tuple]:
    """Rows (selected columns) of a text that must load without any reject."""
    result = parse(text)
    assert result.rejects == []
    return result.rows.select(*columns).rows()


def one_row(text: str, config: Hl7Config | None = NY) -> dict:
    result = parse(text, config)
    assert result.rejects == []
    assert result.rows.height == 1
    return result.rows.row(0, named=True)


def test_one_obx_fills_every_column():
    row = one_row(message(PID, "ORC|RE||FIL1^LABWH_LIS", OBR, E2))
    assert row == {
        "file_sha256": "f" * 64,
        "position": "m0/s4",  # MSH s0, PID s1, ORC s2, OBR s3, OBX s4
        "source_system": "LABWH_LIS",
        "patient_key": "K(NORTH_CLINIC|MRN42)",
        "message_control_id": "MSG1",
        "sending_application": "LABWH_LIS",
        "sending_facility": "NORTH_CLINIC",
        "hl7_version": "2.5.1",
        "message_at": dt.datetime(2023, 1, 5, 9, 30),  # -0500 in January = EST
        "message_index": 0,
        "segment_index": 4,
        "filler_order_number": "FIL1",
        "placer_order_number": "PLC1",
        "order_status": "F",
        "collected_at": dt.datetime(2023, 1, 5, 8, 30),
        "observed_at": dt.datetime(2023, 1, 5, 8, 30),
        "source_code": "E2",
        "source_text": "Estradiol",
        "source_code_system": "L",
        "alt_code": "2243-4",
        "alt_text": "Estradiol",
        "alt_code_system": "LN",
        "sub_id": None,
        "value_type": "NM",
        "original_value": "18.4",
        "original_unit": "pg/mL",
        "value_num_original": 18.4,
        "comparator": None,
        "value_text": None,
        "reference_range": "10-40",
        "abnormal_flags": "N",
        "result_status": "F",
        "loinc_code": "2243-4",  # from OBX-3 components 4-6 (system LN)
        "analyte": "estradiol",
        "is_mapped": True,
        "value": 18.4,
        "unit": "pg/mL",
        "detection_limit": None,
        "method": None,
        "birth_year": 1958,
        "sex": "M",
    }


def test_identities_every_pid3_repetition_and_mr_first():
    pid = (
        "PID|1||SSN1^^^SSA^SS~MRN42^^^NORTH_CLINIC&2.16.1&ISO^MR~X9^^^^PI"
        "||Núñez^José^^^^^L||19580312|M"
    )
    result = parse(message(pid, OBR, E2))
    key = "K(NORTH_CLINIC|MRN42)"  # the MR repetition, not the first one
    assert result.rows["patient_key"].to_list() == [key]
    got = {(i.namespace, i.identifier, i.identifier_type) for i in result.identities}
    # the third has no assigning authority: MSH-4 stands in
    assert got == {
        ("SSA", "SSN1", "SS"),
        ("NORTH_CLINIC", "MRN42", "MR"),
        ("NORTH_CLINIC", "X9", "PI"),
    }
    for identity in result.identities:
        assert identity.patient_key == key
        assert (identity.family_name, identity.given_name) == ("Núñez", "José")
        assert identity.birth_date == "1958-03-12"


def test_patient_key_falls_back_to_first_repetition_and_msh4():
    row = one_row(message("PID|1||ABC7~DEF8^^^LAB2^PI||DOE^JOHN||1958|F", OBR, E2))
    assert row["patient_key"] == "K(NORTH_CLINIC|ABC7)"  # no MR: first; no authority: MSH-4
    assert (row["birth_year"], row["sex"]) == (1958, "F")


def test_sn_censored_and_plain():
    result = parse(
        message(
            PID,
            OBR,
            "OBX|1|SN|E2^Estradiol^L^2243-4^Estradiol^LN||<^5|pg/mL|10-40|L|||F",
            "OBX|2|SN|1554-5^GLUCOSE^LN||^182|mg/dl|70_105|H|||F",
            "OBX|3|SN|E2^Estradiol^L^2243-4^Estradiol^LN||>=^300|pg/mL|||H|||F",
            "OBX|4|SN|TITER^Titer^L||^1^:^40||||||F",
        )
    )
    rows = result.rows.select(
        "original_value",
        "value_num_original",
        "comparator",
        "value",
        "detection_limit",
        "value_text",
    ).rows()
    assert rows == [
        ("<^5", 5.0, "<", 5.0, 5.0, None),  # <5: value = limit L, detection limit L
        ("^182", 182.0, None, 182.0, None, None),  # unmapped glucose: value as sent
        (">=^300", 300.0, ">=", 300.0, None, None),  # > is not a detection limit
        ("^1^:^40", None, None, None, None, "1:40"),  # a ratio stays text
    ]


def test_nm_repetitions_keep_text_and_no_number():
    row = one_row(message(PID, OBR, "OBX|2|NM|8867-4^Heart rate^LN^^^^2.33|1|27~25||||||I"))
    assert (row["original_value"], row["value_text"], row["value_num_original"]) == (
        "27~25",
        "27~25",
        None,
    )
    assert (row["sub_id"], row["result_status"], row["is_mapped"]) == ("1", "I", False)


def test_text_and_coded_values():
    result = parse(
        message(
            PID,
            OBR,
            "OBX|1|ST|NOTE^Note^L||hemolyzed||||||F",
            "OBX|2|CWE|625-4^Bacteria^LN||27268008^Salmonella^SCT||||||P",
            "OBX|3|ST|E2^Estradiol^L^2243-4^Estradiol^LN||<24|pg/mL||L|||F",
            "OBX|4|TX|TXT^Text^L||first\\.br\\second||||||F",
        )
    )
    rows = result.rows.select("value_text", "value_num_original", "comparator", "value").rows()
    assert rows == [
        ("hemolyzed", None, None, None),
        ("Salmonella", None, None, None),
        ("<24", 24.0, "<", 24.0),  # a number sent as ST also gets its number
        ("first\nsecond", None, None, None),
    ]


def test_unit_is_the_identifier_component_and_flags_join_repetitions():
    row = one_row(
        message(
            PID,
            OBR,
            "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||20|pg/mL^picogram per milliliter^UCUM"
            "|10-40|A^Abnormal^HL70078~H^High^HL70078|||F",
        )
    )
    assert (row["original_unit"], row["unit"], row["abnormal_flags"]) == ("pg/mL", "pg/mL", "A~H")


def test_unit_conversion_through_labnorm():
    row = one_row(
        message(
            PID, OBR, "OBX|1|NM|E2M^Estradiol molar^L^14715-7^Estradiol^LN||36.71|pmol/L||N|||F"
        )
    )
    # 36.71 pmol/L ÷ 3.671 = 10 pg/mL (DOMAIN.md)
    assert row["unit"] == "pg/mL"
    assert row["value"] == pytest.approx(10.0)
    assert (row["original_unit"], row["value_num_original"]) == ("pmol/L", 36.71)


def test_unknown_unit_is_rejected_with_position():
    result = parse(
        message(PID, OBR, E2, "OBX|2|NM|E2^Estradiol^L^2243-4^Estradiol^LN||3|mg/furlong||N|||F")
    )
    assert result.rows["position"].to_list() == ["m0/s3"]
    [reject] = result.rejects
    assert (reject.position, reject.check_name, reject.message_control_id) == (
        "m0/s4",
        UNKNOWN_UNIT,
        "MSG1",
    )


def test_unmapped_analyte_loads_unmapped():
    row = one_row(message(PID, OBR, "OBX|1|NM|GLU^Glucose^L||98|mg/dL|70-99|N|||F"))
    assert (row["is_mapped"], row["loinc_code"], row["analyte"]) == (False, None, "Glucose")
    assert (row["value"], row["unit"]) == (98.0, "mg/dL")


def test_local_code_mapped_through_config():
    cfg = Hl7Config(local_codes={"TTOT": "2986-8"}, timezone="America/New_York")
    row = one_row(message(PID, OBR, "OBX|1|NM|TTOT^Testosterone^L||5.2|nmol/L||N|||F"), cfg)
    assert (row["loinc_code"], row["analyte"], row["unit"]) == (
        "2986-8",
        "testosterone_total",
        "ng/dL",
    )
    assert row["value"] == pytest.approx(5.2 / 0.03467)  # ng/dL × 0.03467 = nmol/L


def test_loinc_in_components_1_to_3():
    row = one_row(message(PID, OBR, "OBX|1|NM|2243-4^Estradiol^LN||12|pg/mL||N|||F"))
    assert (row["loinc_code"], row["alt_code"]) == ("2243-4", None)


def test_config_resolved_per_sending_application(tmp_path, monkeypatch):
    (tmp_path / "LAB_A.yaml").write_text("local_codes:\n  X1: 2243-4\ntimezone: Europe/Berlin\n")
    (tmp_path / "LAB_B.yaml").write_text("local_codes:\n  X1: 2986-8\n")
    monkeypatch.setattr(hl7_config, "HL7_CONFIG_DIR", tmp_path)
    text = "".join(
        "\r".join(
            [
                f"MSH|^~\\&|{app}|FAC|R|R|20230701083000-0700||ORU^R01|{app}1|P|2.5.1",
                PID,
                "OBR|1||F1|P^Panel^L|||20230701080000",
                f"OBX|1|NM|X1^Local^L||10|{unit}||N|||F",
            ]
        )
        + "\r"
        for app, unit in (("LAB_A", "pg/mL"), ("LAB_B", "ng/dL"))
    )
    result = parse(text, config=None)
    rows = result.rows.select("sending_application", "loinc_code", "message_at").rows()
    assert rows == [
        ("LAB_A", "2243-4", dt.datetime(2023, 7, 1, 17, 30)),  # Berlin: 15:30 UTC = 17:30 CEST
        ("LAB_B", "2986-8", dt.datetime(2023, 7, 1, 11, 30)),  # default New York: EDT
    ]
    assert result.rejects == []


def test_load_hl7_config(tmp_path):
    (tmp_path / "LABWH_LIS.yaml").write_text(
        "local_codes:\n  E2S: 2243-4\ntimezone: America/Chicago\n"
    )
    cfg = load_hl7_config("LABWH_LIS", config_dir=tmp_path)
    assert (dict(cfg.local_codes), cfg.timezone) == ({"E2S": "2243-4"}, "America/Chicago")
    assert load_hl7_config("NOPE", config_dir=tmp_path) == Hl7Config()
    assert Hl7Config().timezone == "America/New_York"
    # a name taken from a message never becomes a path outside the folder
    assert load_hl7_config("../LABWH_LIS", config_dir=tmp_path / "sub") == Hl7Config()


def test_timestamps_with_offset_without_and_day_precision():
    result = parse(
        message(
            PID,
            "OBR|1||F1|P^Panel^L|||20230701083000-0700",
            "OBX|1|NM|GLU^Glucose^L||1|mg/dL|||||F|||20230701",
            "OBR|2||F2|P^Panel^L|||202307010830",
            "OBX|1|NM|GLU^Glucose^L||2|mg/dL|||||F",
            "OBR|3||F3|P^Panel^L",
            "OBX|1|NM|GLU^Glucose^L||3|mg/dL|||||F|||20230702",
        )
    )
    rows = result.rows.select("filler_order_number", "collected_at", "observed_at").rows()
    assert rows == [
        ("F1", dt.datetime(2023, 7, 1, 11, 30), dt.datetime(2023, 7, 1)),
        ("F2", dt.datetime(2023, 7, 1, 8, 30), None),  # no offset: already local
        ("F3", dt.datetime(2023, 7, 2), dt.datetime(2023, 7, 2)),  # no OBR-7: OBX-14
    ]


def test_several_pid_and_obr_groups_and_ignored_segments():
    text = message(
        "SFT|Vendor|1.0",
        PID,
        "NTE|1||a note",
        "ZPD|custom|stuff",
        OBR,
        E2,
        "NTE|1||result note",
        "SPM|1|S1",
        "OBR|2||FIL2|HORM^Hormone panel^L|||20230106083000-0500",
        "OBX|1|NM|TT^Testosterone^L^2986-8^Testosterone^LN||512|ng/dL|264-916|N|||F",
        "PID|2||MRN43^^^NORTH_CLINIC^MR||ROE^JANE||19600101|F",
        "OBR|1||FIL3|HORM^Hormone panel^L|||20230107083000-0500",
        "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||30|pg/mL||N|||F",
        "ZXX|trailing z segment",
    )
    result = parse(text)
    assert result.rejects == []
    rows = result.rows.select(
        "position", "patient_key", "filler_order_number", "collected_at", "sex"
    ).rows()
    assert rows == [
        ("m0/s6", "K(NORTH_CLINIC|MRN42)", "FIL1", dt.datetime(2023, 1, 5, 8, 30), "M"),
        ("m0/s10", "K(NORTH_CLINIC|MRN42)", "FIL2", dt.datetime(2023, 1, 6, 8, 30), "M"),
        ("m0/s13", "K(NORTH_CLINIC|MRN43)", "FIL3", dt.datetime(2023, 1, 7, 8, 30), "F"),
    ]


def test_versions_2_3_and_2_8():
    v23 = (
        "MSH|^~\\&|OLD|FAC|R|R|200202150930||ORU^R01|C23|P|2.3\r"
        "PID|||555^^^FAC||EVE^E||19620320|F\r"
        "OBR|1|845439|1045813|15545^GLUCOSE|||200202150730\r"
        "OBX|1|SN|1554-5^GLUCOSE^LN||^182|mg/dl|70_105|H|||F\r"
    )
    v28 = (
        "MSH|^~\\&#|NEW|FAC|R|R|20230105093000-0500||ORU^R01^ORU_R01|C28|P|2.8\r"
        "PID|1||P1^^^FAC^MR||DOE^J||19580312|M\r"
        "OBR|1||F1|P^Panel^L|||20230105083000-0500\r"
        "OBX|1|NM|2243-4^Estradiol^LN||9|pg/mL||L|||A\r"  # A = amended (2.8)
    )
    rows = clean_rows(
        v23 + v28, "hl7_version", "message_at", "collected_at", "value", "result_status"
    )
    assert rows == [
        ("2.3", dt.datetime(2002, 2, 15, 9, 30), dt.datetime(2002, 2, 15, 7, 30), 182.0, "F"),
        ("2.8", dt.datetime(2023, 1, 5, 9, 30), dt.datetime(2023, 1, 5, 8, 30), 9.0, "A"),
    ]


def test_non_ascii_text_utf8_and_latin1():
    seg = "OBX|1|NM|CREA^Créatinine^L||88|µmol/L||N|||F"
    utf8 = message("PID|1||M1^^^FAC^MR||Peña^José||1958|M", OBR, seg).encode("utf-8")
    latin1 = message("PID|1||M1^^^FAC^MR||Peña^José||1958|M", OBR, seg).encode("latin-1")
    for data in (utf8, latin1):
        result = parse(data)
        row = result.rows.row(0, named=True)
        assert (row["source_text"], row["original_unit"]) == ("Créatinine", "µmol/L")
        assert result.identities[0].given_name == "José"


def test_custom_encoding_characters():
    hash_fs = (
        "MSH#^~\\&#LAB#FAC#R#R#20230105093000-0500##ORU^R01#C1#P#2.5.1\r"
        "PID#1##M1^^^FAC^MR##DOE^J##1958#M\r"
        "OBR#1##F1#P^Panel^L###20230105083000-0500\r"
        "OBX#1#NM#E2^Estradiol^L^2243-4^Estradiol^LN##20#pg/mL#10\\F\\40#N###F\r"
    )
    star_cs = (
        "MSH|*~\\&|LAB|FAC|R|R|20230105093000-0500||ORU*R01|C2|P|2.5.1\r"
        "PID|1||M1***FAC*MR||DOE*J||1958|M\r"
        "OBR|1||F1|P*Panel*L|||20230105083000-0500\r"
        "OBX|1|SN|E2*Estradiol*L*2243-4*Estradiol*LN||<*5|pg/mL|a\\S\\b|L|||F\r"
    )
    columns = ("patient_key", "loinc_code", "value", "comparator", "reference_range")
    assert clean_rows(hash_fs + star_cs, *columns) == [
        ("K(FAC|M1)", "2243-4", 20.0, None, "10#40"),  # \F\ = this message's '#'
        ("K(FAC|M1)", "2243-4", 5.0, "<", "a*b"),  # \S\ = this message's '*'
    ]


def test_escapes_in_values():
    row = one_row(
        message(
            PID,
            OBR,
            "OBX|1|ST|NOTE^A\\T\\B note^L||x\\F\\y\\S\\z\\T\\w\\R\\v\\E\\u\\X41\\t\\.br\\s||||||F",
        )
    )
    assert row["source_text"] == "A&B note"
    assert row["value_text"] == "x|y^z&w~v\\uAt\ns"


def test_framing_batches_mllp_line_endings_bom():
    one = message(PID, OBR, E2, control_id="A")
    two = message(PID, OBR, E2, control_id="B")
    variants = {
        "cr": one + two,
        "lf": (one + two).replace("\r", "\n"),
        "crlf": (one + two).replace("\r", "\r\n"),
        "batch": "FHS|^~\\&|X\rBHS|^~\\&|X\r" + one + two + "BTS|2\rFTS|1\r",
        "batch_no_trailers": "FHS|^~\\&|X\rBHS|^~\\&|X\r" + one + two,
        "mllp": "\x0b" + one + "\x1c\r" + "\x0b" + two + "\x1c\r",
        "bom": "\ufeff" + one + two,
        "blank_lines": "\n\n" + one + "\n\n" + two + "\n",
    }
    for name, text in variants.items():
        result = parse(text)
        assert result.rejects == [], name
        got = result.rows.select("message_control_id", "message_index", "position").rows()
        assert got == [("A", 0, "m0/s3"), ("B", 1, "m1/s3")], name


def test_missing_patient_id_rejects_each_obx():
    result = parse(message("PID|1||^^^NPI^MR||DOE^JOHN||19580312|M", OBR, E2, E2))
    assert result.rows.height == 0
    assert [(r.position, r.check_name) for r in result.rejects] == [
        ("m0/s3", MISSING_PATIENT_ID),
        ("m0/s4", MISSING_PATIENT_ID),
    ]
    assert result.identities == []
    # a message without PID (allowed by ORU^R01): its results have no patient either
    no_pid = parse(message(OBR, E2))
    assert [(r.position, r.check_name) for r in no_pid.rejects] == [("m0/s2", MISSING_PATIENT_ID)]


def test_malformed_messages_amid_good_ones():
    good = message(PID, OBR, E2)
    bad_id = message(PID, OBR, "obx|1|NM|E2^E^L||1|pg/mL")
    obx_first = message(E2, PID, OBR, E2)
    obx_before_obr = message(PID, "ORC|RE", E2, OBR)  # docs/feeds.md: no OBR before OBX
    bad_msh = "MSH|^~|LAB|FAC\r" + PID + "\r" + OBR + "\r" + E2 + "\r"
    bad_time = message(PID, OBR, E2).replace("20230105093000-0500", "2023-01-05", 1)
    adt = message(PID).replace("ORU^R01^ORU_R01", "ADT^A01^ADT_A01")
    orphan = "PID|1||MRN9^^^X^MR||SECRET^NAME\r"
    text = (
        orphan + good + bad_id + obx_first + good + bad_msh + bad_time + adt + good + obx_before_obr
    )
    result = parse(text)
    # messages: 0 orphan, 1 good, 2 bad id, 3 OBX first, 4 good, 5 bad MSH, 6 bad MSH-7,
    # 7 ADT, 8 good, 9 OBX after PID but before OBR
    assert result.rows["position"].to_list() == ["m1/s3", "m4/s3", "m8/s3"]
    assert [(r.position, r.check_name) for r in result.rejects] == [
        (f"m{i}", MALFORMED_MESSAGE) for i in (0, 2, 3, 5, 6, 7, 9)
    ]
    assert result.received == 3 + 7
    # identities of rejected messages are not kept; nothing identifying in rejects
    assert {i.identifier for i in result.identities} == {"MRN42"}
    for r in result.rejects:
        shown = f"{r.reason} {r.excerpt}"
        for secret in ("MRN42", "MRN9", "DOE", "JOHN", "SECRET", "19580312"):
            assert secret not in shown
    assert result.rejects[1].excerpt == "MSH(11) PID(8) OBR(25) ???(6)"
    # the control id is kept when MSH could be read (it is not a patient identifier)
    assert [r.message_control_id for r in result.rejects] == [
        None,
        "MSG1",
        "MSG1",
        None,
        "MSG1",
        "MSG1",
        "MSG1",
    ]


def test_oul_r22_rejected_unless_configured():
    # SPM-17 (collection date/time range, start 08:15 local) times the specimen OBX
    spm = "SPM|1|S1" + "|" * 15 + "20230105081500^20230105082000"
    text = message(PID, spm, "OBX|1|NM|GLU^Glucose^L||5|mmol/L", OBR, E2).replace(
        "ORU^R01^ORU_R01", "OUL^R22^OUL_R22"
    )
    [reject] = parse(text).rejects
    assert (reject.position, reject.check_name) == ("m0", MALFORMED_MESSAGE)
    assert "OUL^R22" in reject.reason
    # a source that sends OUL^R22 lists it; specimen OBX (after SPM, before OBR) then load
    cfg = Hl7Config(message_types=frozenset({"ORU^R01", "OUL^R22"}))
    result = parse(text, cfg)
    assert result.rejects == []
    rows = result.rows.select("position", "filler_order_number", "collected_at").rows()
    assert rows == [
        ("m0/s3", None, dt.datetime(2023, 1, 5, 8, 15)),
        ("m0/s5", "FIL1", dt.datetime(2023, 1, 5, 8, 30)),
    ]


def test_oul_r22_second_specimen_times_its_order_when_obr7_is_empty():
    # OUL^R22: SPM, OBR, OBX, then a second specimen group whose OBR-7 is empty: its results
    # were collected at the second SPM-17 (08:40), not at the first order's time
    spm1 = "SPM|1|S1" + "|" * 15 + "20230105081500"
    spm2 = "SPM|2|S2" + "|" * 15 + "20230105084000"
    obr2 = "OBR|2||FIL2^LAB|HORM^Hormone panel^L"  # no OBR-7
    obx2 = "OBX|2|NM|E2^Estradiol^L^2243-4^Estradiol^LN||18.4|pg/mL|10-40|N|||F"  # no OBX-14
    text = message(PID, spm1, OBR, E2, spm2, obr2, obx2).replace(
        "ORU^R01^ORU_R01", "OUL^R22^OUL_R22"
    )
    result = parse(text, Hl7Config(message_types=frozenset({"OUL^R22"})))
    assert result.rejects == []
    rows = result.rows.select("position", "filler_order_number", "collected_at").rows()
    assert rows == [
        ("m0/s4", "FIL1", dt.datetime(2023, 1, 5, 8, 30)),  # OBR-7 given: it wins
        ("m0/s7", "FIL2", dt.datetime(2023, 1, 5, 8, 40)),
    ]
    # in ORU^R01 an SPM after an order belongs to it: the next order's empty OBR-7 stays empty
    oru = message(PID, OBR, E2, spm2, obr2, obx2)
    [reject] = parse(oru).rejects
    assert reject.position == "m0/s6" and "no collection time" in reject.reason


def test_spm17_start_with_its_degree_of_precision_subcomponent_times_the_order():
    # SPM-17 is a DR; in 2.5+ its start is a TS whose parts are subcomponents: 08:15 local
    # with the (deprecated) precision S after `&`; the order's OBR-7 is empty
    spm = "SPM|1|S1" + "|" * 15 + "20230105081500&S^20230105082000&S"
    obr = "OBR|1||FIL1^LAB|HORM^Hormone panel^L"  # no OBR-7
    obx = "OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||18.4|pg/mL|10-40|N|||F"  # no OBX-14
    text = message(PID, spm, obr, obx).replace("ORU^R01^ORU_R01", "OUL^R22^OUL_R22")
    result = parse(text, Hl7Config(message_types=frozenset({"OUL^R22"})))
    assert result.rejects == []
    assert result.rows.select("collected_at").to_series().to_list() == [
        dt.datetime(2023, 1, 5, 8, 15)
    ]


def test_rejected_values_are_shown_by_shape_unless_data_like():
    result = parse(
        message(
            "PID|1||^^^X^MR",
            OBR,
            "OBX|1|TX|NOTE^Note^L||Seen by Dr Who||||||F",
            "OBX|2|NM|E2^Estradiol^L||12.5|pg/mL||||||F",
        )
    )
    assert [r.excerpt for r in result.rejects] == [
        "OBX-3 NOTE | OBX-2 TX | OBX-5 aaaa aa aa aaa",  # letters → a: no text
        "OBX-3 E2 | OBX-2 NM | OBX-5 12.5",  # numbers as they are
    ]
    # a name typed into a numeric result is not quoted
    named = parse(message(PID, OBR, "OBX|1|NM|E2^Estradiol^L||DOE JOHN|pg/mL||||||F"))
    [reject] = named.rejects
    assert (reject.check_name, reject.excerpt) == (
        "unparseable_value",
        "OBX-3 E2 | OBX-2 NM | OBX-5 aaa aaaa",
    )


def test_sn_without_its_caret_is_read_as_the_number_it_holds():
    # SN-1 is the comparator, but senders drop the caret: `165.6` or `<0.5` alone in SN-1 is
    # unambiguous; a word there is still a reject
    result = parse(
        message(
            PID,
            OBR,
            "OBX|1|SN|E2^Estradiol^L^2243-4^Estradiol^LN||165.6|pg/mL|||||F",
            "OBX|2|SN|E2^Estradiol^L^2243-4^Estradiol^LN||<0.5|pg/mL|||||F",
            "OBX|3|SN|E2^Estradiol^L^2243-4^Estradiol^LN||>= 300|pg/mL|||||F",
            "OBX|4|SN|E2^Estradiol^L^2243-4^Estradiol^LN||high|pg/mL|||||F",
        )
    )
    rows = result.rows.select("position", "value_num_original", "comparator").rows()
    assert rows == [("m0/s3", 165.6, None), ("m0/s4", 0.5, "<"), ("m0/s5", 300.0, ">=")]
    assert [(r.position, r.check_name) for r in result.rejects] == [("m0/s6", "unparseable_value")]


def test_unparseable_values_are_rejected_records():
    result = parse(
        message(
            PID,
            OBR,
            "OBX|1|NM|GLU^Glucose^L||0 .07|mg/dL|||||F",
            "OBX|2|SN|GLU^Glucose^L||<>^5|mg/dL|||||F",
            "OBR|2||F2|P^Panel^L|||20170229",
            "OBX|1|NM|GLU^Glucose^L||1|mg/dL|||||F",
            "OBX|2|NM|GLU^Glucose^L||2|mg/dL|||||F|||20170301",
        )
    )
    assert [(r.position, r.check_name) for r in result.rejects] == [
        ("m0/s3", "unparseable_value"),
        ("m0/s4", "unparseable_value"),
        ("m0/s6", "unparseable_value"),  # bad OBR-7 and no OBX-14: no collection time
    ]
    # a bad OBR-7 with a readable OBX-14 falls back to OBX-14
    assert result.rows.select("position", "collected_at").rows() == [
        ("m0/s7", dt.datetime(2017, 3, 1))
    ]


def test_chunks_stream_with_file_positions(tmp_path):
    text = "".join(message(PID, OBR, E2, control_id=f"C{i}") for i in range(5))
    path = tmp_path / "five.hl7"
    path.write_bytes(text.encode())
    parts = list(
        iter_parse_hl7_file(path, file_sha256="x", pseudonymize=pseudo, config=NY, chunk_messages=2)
    )
    assert [p.rows["position"].to_list() for p in parts] == [
        ["m0/s3", "m1/s3"],
        ["m2/s3", "m3/s3"],
        ["m4/s3"],
    ]
    assert [len(p.identities) for p in parts] == [1, 1, 1]  # each chunk lists its identities


def test_empty_file():
    result = parse(b"")
    assert (result.rows.height, result.rejects, result.identities) == (0, [], [])


def test_coded_value_type_and_status_use_component_1():
    # Senders code the ID fields OBX-2 (table 0125) and OBX-11 (table 0085); the corpus file
    # 005_AL_ORU_R01_NBS_Simplified sends `F^Final results; …^HL70085`.
    rows = clean_rows(
        message(
            PID,
            OBR,
            "OBX|1|NM^^HL70125|E2^Estradiol^L||18.4|pg/mL|||||F^Final results^HL70085",
            "OBX|2|SN^Structured Numeric^HL70125|E2^Estradiol^L||<^5|pg/mL|||||C^Corrected^HL70085",
        ),
        "value_type",
        "value_num_original",
        "comparator",
        "result_status",
    )
    assert rows == [("NM", 18.4, None, "F"), ("SN", 5.0, "<", "C")]


def test_a_value_without_value_type_is_read_as_st():
    # OBX-2 empty: a number (with a comparator) still counts; other text stays text
    rows = clean_rows(
        message(
            PID,
            OBR,
            "OBX|1||E2^Estradiol^L||18.4|pg/mL|||||F",
            "OBX|2||E2^Estradiol^L||<5|pg/mL|||||F",
            "OBX|3||E2^Estradiol^L||hemolyzed|pg/mL|||||F",
        ),
        "value_type",
        "value_num_original",
        "comparator",
        "value_text",
    )
    assert rows == [
        (None, 18.4, None, "18.4"),
        (None, 5.0, "<", "<5"),
        (None, None, None, "hemolyzed"),
    ]


def test_hl7_null_is_no_identifier():
    # `""` means "no value": two patients sent with PID-3.1 `""` are not one patient, and
    # orders with OBR-3 `""` share no filler order number
    text = message('PID|1||""^^^NORTH_CLINIC^MR||ALPHA^ANN', OBR, E2) + message(
        'PID|1||""^^^NORTH_CLINIC^MR||BETA^BOB', OBR, E2, control_id="MSG2"
    )
    result = parse(text)
    assert result.rows.height == 0 and result.identities == []
    assert [(r.position, r.check_name) for r in result.rejects] == [
        ("m0/s3", "missing_patient_id"),
        ("m1/s3", "missing_patient_id"),
    ]
    no_filler = OBR.replace("|FIL1^LABWH_LIS|", '|""|')
    assert clean_rows(message(PID, no_filler, E2), "filler_order_number") == [(None,)]


def test_a_result_without_any_collection_time_is_put_aside():
    # OBR-7 and OBX-14 both empty: the result cannot be placed in time (the CSV feed rejects
    # the same); with OBX-14 alone it loads
    obr = "OBR|1|PLC1|FIL1^LABWH_LIS|HORM^Hormone panel^L"
    result = parse(
        message(
            PID,
            obr,
            "OBX|1|NM|E2^Estradiol^L||9|pg/mL|||||F",
            "OBX|2|NM|E2^Estradiol^L||10|pg/mL|||||F|||20230105083000",
        )
    )
    [reject] = result.rejects
    assert (reject.position, reject.check_name) == ("m0/s3", "unparseable_value")
    assert reject.reason == "no collection time: OBR-7 and OBX-14 are both empty"
    assert result.rows["collected_at"].to_list() == [dt.datetime(2023, 1, 5, 8, 30)]


def test_corpus_file_with_coded_status_has_table_0085_statuses():
    data = (
        Path(__file__).parents[2]
        / ".."
        / "shared"
        / "corpus"
        / "CDCgov_trusted-intermediary/Test/Results/005_AL_ORU_R01_NBS_Simplified_0_initial_message.hl7"
    ).read_bytes()
    result = parse(data, config=None)
    assert result.rows.height > 0
    assert set(result.rows["result_status"].to_list()) <= set(RESULT_STATUSES)
    assert "HL70125" not in "".join(v or "" for v in result.rows["value_type"].to_list())


def test_repeated_sn_has_no_single_number_like_nm():
    rows = clean_rows(
        message(PID, OBR, "OBX|1|SN|E2^Estradiol^L||<^5~^30|pg/mL|||||F"),
        "value_num_original",
        "comparator",
        "value_text",
    )
    assert rows == [(None, None, "<^5~^30")]


def test_spm_after_an_obr_keeps_the_order_numbers_and_time():
    # ORU^R01 2.5.1: OBR, OBX…, SPM, OBX… (specimen observations of the same order)
    rows = clean_rows(
        message(PID, OBR, E2, "SPM|1|||BLD^Blood", "OBX|2|NM|GLU^Glucose^L||5|mmol/L|||||F"),
        "filler_order_number",
        "collected_at",
    )
    assert rows == [("FIL1", dt.datetime(2023, 1, 5, 8, 30))] * 2


def test_oul_r24_spm_belongs_to_the_order_before_it():
    """OUL^R24 is order first (OBR, SPM, OBX): the SPM neither re-times the results (its
    SPM-17 is later than OBR-7 here) nor clears the order numbers."""
    spm = "SPM|1|S1" + "|" * 15 + "20230105110000"
    text = message(PID, OBR, spm, E2.replace("|||20230105083000-0500", "")).replace(
        "ORU^R01^ORU_R01", "OUL^R24^OUL_R24"
    )
    result = parse(text, Hl7Config(message_types=frozenset({"OUL^R24"})))
    assert result.rejects == []
    rows = result.rows.select("placer_order_number", "filler_order_number", "collected_at").rows()
    assert rows == [("PLC1", "FIL1", dt.datetime(2023, 1, 5, 8, 30))]  # OBR-7, 08:30 local


def test_oru_obx_after_an_spm_with_no_obr_is_malformed():
    spm = "SPM|1|S1" + "|" * 15 + "20230105081500"
    [reject] = parse(message(PID, spm, E2)).rejects
    assert (reject.position, reject.check_name) == ("m0", MALFORMED_MESSAGE)
    assert "OBX with no OBR before it" in reject.reason


def test_a_chunk_of_several_senders_without_any_row_gives_its_rejects():
    """Messages of two sending applications, none with a result: rejects, not an error."""
    first = "MSH|^~\\&|APP1|F|||20240101||ORU^R01|1|P|2.5.1\rPID|1||123\r"
    second = "MSH|^~\\&|APP2|F|||20240101||ORU^R01|2|P|2.5.1\rPID|1||456\rOBX|1|NM|X||1\r"
    result = parse_hl7_file(
        (first + second).encode(), file_sha256="f" * 64, pseudonymize=pseudo
    )  # config per sender, as the loader does
    assert result.rows.height == 0
    assert [(r.position, r.check_name) for r in result.rejects] == [
        ("m1", MALFORMED_MESSAGE)  # its OBX has no OBR; m0 simply holds no result
    ]


@pytest.mark.parametrize("tail", [b"\x1a", b"\r\x1a", b"\x00" * 64, b"\r\n\x1a\x00\x00"])
def test_dos_end_of_file_and_nul_padding_after_the_last_message(tail):
    text = message(PID, OBR, E2).encode()
    result = parse(text.rstrip(b"\r") + tail if tail.startswith(b"\x1a") else text + tail)
    assert result.rejects == []
    assert result.rows.height == 1


def test_a_catalog_loinc_sent_without_coding_system_is_mapped():
    """`2243-4^Estradiol` (no OBX-3.3, as v2.3 feeds and the spec's examples write it) is the
    LOINC; the same code under an explicit local system, or a code the catalog does not know,
    stays unmapped."""
    bare = one_row(message(PID, OBR, "OBX|1|NM|2243-4^Estradiol||18.4|pg/mL|||||F"))
    assert (bare["loinc_code"], bare["analyte"], bare["is_mapped"]) == ("2243-4", "estradiol", True)
    local = one_row(message(PID, OBR, "OBX|1|NM|2243-4^Estradiol^L||18.4|pg/mL|||||F"))
    assert (local["loinc_code"], local["is_mapped"]) == (None, False)
    unknown = one_row(message(PID, OBR, "OBX|1|NM|1554-5^Glucose||5.1|mmol/L|||||F"))
    assert (unknown["loinc_code"], unknown["is_mapped"]) == (None, False)


@pytest.mark.parametrize(
    ("value", "number", "comparator", "text"),
    [
        ("< 5.00", 5.0, "<", "< 5.00"),
        ("18.4", 18.4, None, "18.4"),
        ("see note", None, None, "see note"),
    ],
)
def test_tx_result_that_is_a_number_gets_it(value, number, comparator, text):
    """Analysers send E2 as TX `< 5.00`: a whole-number TX is read as ST is; other text stays text."""
    row = one_row(message(PID, OBR, f"OBX|1|TX|2243-4^Estradiol^LN||{value}|pg/mL|||||F"))
    assert (row["value"], row["comparator"], row["value_text"]) == (number, comparator, text)
