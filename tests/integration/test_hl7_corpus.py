"""Every real third-party HL7 file in ../shared/corpus ingests, with counts checked.

Expected counts were made independently of the parser: each file was split with a plain
``re.split(r"\\r\\n|\\r|\\n", text)`` (after dropping a UTF-8 BOM) and the lines starting with
``MSH`` and ``OBX`` were counted; the rejects were found by reading the files:
- CA/002_CA_ORU_R01: PID-3 is ``^^^NPI^MR`` (no identifier) → every OBX is missing_patient_id;
- NewSTEPs/002: one NM OBX-5 reads ``0 .07`` → unparseable_value (the other 102 OBX with the
  impossible OBX-14 ``20170229…`` load: their OBR-7 is a valid collection time);
- OUL-R22-01: OUL^R22 is not a type this feed accepts by default (docs/hl7.md) → the whole
  message is one malformed_message record (its 7 OBX are not records);
- ORU-R01-01: an OBX right after PID/PRT, before any OBR (docs/feeds.md: "no OBR before
  OBX" is malformed) → one malformed_message record for the message and its 5 OBX;
- athena oru-example: an ORU with an OBR and no OBX → nothing to load.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from schemas.staging import RESULT_STATUSES, StgLabResult, columns_of
from transforms.hl7 import iter_parse_hl7_file, parse_hl7_file
from transforms.hl7.framing import iter_messages
from transforms.pseudonym import make_pseudonymizer

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpus"

# path: (messages, OBX segments, accepted rows, {check_name: rejects})
EXPECTED = {
    "CDCgov_trusted-intermediary/CA/002_CA_ORU_R01.hl7": (1, 155, 0, {"missing_patient_id": 155}),
    "CDCgov_trusted-intermediary/Epic/002_Epic_ORU_R01.hl7": (1, 3, 3, {}),
    "CDCgov_trusted-intermediary/NewSTEPs/002_NewSTEPs_ORU_R01.hl7": (
        1,
        131,
        130,
        {"unparseable_value": 1},
    ),
    "CDCgov_trusted-intermediary/Oracle/004_Oracle_ORU_R01.hl7": (1, 3, 3, {}),
    "CDCgov_trusted-intermediary/TN/001_TN_ORU_R01_LRI.hl7": (1, 96, 96, {}),
    "CDCgov_trusted-intermediary/TX/002_TX_ORU_R01.hl7": (1, 33, 33, {}),
    "CDCgov_trusted-intermediary/Test/Automated/008_ORU_R01_micro_character_encoding.hl7": (
        1,
        1,
        1,
        {},
    ),
    "CDCgov_trusted-intermediary/Test/Results/005_AL_ORU_R01_NBS_Simplified_0_initial_message.hl7": (
        1,
        1,
        1,
        {},
    ),
    "MatthewVita_node-hl7-complete/athena-health/oru-example.hl7": (1, 0, 0, {}),
    "MatthewVita_node-hl7-complete/cerner/cerner_bordetella.hl7": (1, 1, 1, {}),
    "MatthewVita_node-hl7-complete/cerner/cerner_lead.hl7": (1, 1, 1, {}),
    "MatthewVita_node-hl7-complete/nist/ORU_R01_2.5.1_SampleTestCase1.hl7": (1, 1, 1, {}),
    "MatthewVita_node-hl7-complete/nist/ORU_R01_2.5.1_SampleTestCase2.hl7": (1, 1, 1, {}),
    "MatthewVita_node-hl7-complete/nist/ORU_R01_2.5.1_SampleTestCase3.hl7": (1, 1, 1, {}),
    "MatthewVita_node-hl7-complete/nist/ORU_R01_2.5.1_SampleTestCase4.hl7": (1, 1, 1, {}),
    "MatthewVita_node-hl7-complete/nist/ORU_R01_2.5.1_SampleTestCase5.hl7": (1, 1, 1, {}),
    "MatthewVita_node-hl7-complete/nist/ORU_R01_2.5.1_SampleTestCase6.hl7": (1, 3, 3, {}),
    "MatthewVita_node-hl7-complete/realm/realm-animal-rabies.hl7": (1, 1, 1, {}),
    "MatthewVita_node-hl7-complete/realm/realm-campylobacter-jejuni.hl7": (1, 1, 1, {}),
    "MatthewVita_node-hl7-complete/realm/realm-hepatitis-c-virus.hl7": (1, 3, 3, {}),
    "microsoft_FHIR-Converter/LAB-ORU-1.hl7": (1, 10, 10, {}),
    "microsoft_FHIR-Converter/LAB-ORU-2.hl7": (1, 10, 10, {}),
    "microsoft_FHIR-Converter/LRI_2.0-NG_CBC_Typ_Message.hl7": (1, 28, 28, {}),
    "microsoft_FHIR-Converter/ORU-R01-01.hl7": (1, 5, 0, {"malformed_message": 1}),
    "microsoft_FHIR-Converter/ORU-R01-RMGEAD.hl7": (1, 1, 1, {}),
    "microsoft_FHIR-Converter/OUL-R22-01.hl7": (1, 7, 0, {"malformed_message": 1}),
}

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="../shared/corpus is not present")


def test_every_corpus_hl7_file_is_listed():
    found = {p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.hl7")}
    assert found == set(EXPECTED)


@pytest.mark.parametrize("rel", sorted(EXPECTED))
def test_corpus_file_ingests_with_exact_counts(rel):
    messages, obx, rows, rejects = EXPECTED[rel]
    data = (CORPUS / rel).read_bytes()
    result = parse_hl7_file(
        data,
        file_sha256=hashlib.sha256(data).hexdigest(),
        pseudonymize=make_pseudonymizer(b"corpus-test"),
    )
    assert dict(result.rows.schema) == columns_of(StgLabResult)
    assert sum(1 for _ in iter_messages(data)) == messages
    # one record per OBX, or one per malformed message (each corpus file is one message)
    malformed = rejects.get("malformed_message", 0)
    assert result.received == rows + sum(rejects.values()) == (1 if malformed else obx)
    assert result.rows.height == rows
    got: dict[str, int] = {}
    for r in result.rejects:
        got[r.check_name] = got.get(r.check_name, 0) + 1
    assert got == rejects
    positions = result.rows["position"].to_list() + [r.position for r in result.rejects]
    assert len(set(positions)) == result.received
    assert result.rows["patient_key"].null_count() == 0


def test_worker_processes_give_the_same_chunks(tmp_path):
    """All corpus files as one file, in chunks of 5 messages: workers=2 == one process."""
    path = tmp_path / "all.hl7"
    path.write_bytes(b"\n".join((CORPUS / rel).read_bytes() for rel in sorted(EXPECTED)))
    kwargs = dict(file_sha256="x", pseudonymize=make_pseudonymizer(b"k"), chunk_messages=5)
    single = list(iter_parse_hl7_file(path, **kwargs))
    multi = list(iter_parse_hl7_file(path, workers=2, **kwargs))
    assert len(single) == len(multi) == 6  # 26 messages
    for a, b in zip(single, multi, strict=True):
        assert a.rows.equals(b.rows)
        assert (a.rejects, a.identities) == (b.rejects, b.identities)
    assert sum(p.received for p in single) == sum(
        rows + sum(rejects.values()) for _, _, rows, rejects in EXPECTED.values()
    )


def test_whole_corpus_reaches_core_and_passes_its_contract(home, tmp_path):
    """Every corpus file landed, staged (validation included) and built into core: the core
    tables pass their blocking Pandera contracts, so no real file can stop a run there (the
    coded OBX-11 `F^Final results^HL70085` of 005_AL once did)."""
    import duckdb

    from schemas.checks import validate_table
    from warehouse import params, steps

    landing = tmp_path / "landing"
    (landing / "hl7").mkdir(parents=True)
    for i, rel in enumerate(sorted(EXPECTED)):
        (landing / "hl7" / f"{i:02d}.hl7").write_bytes((CORPUS / rel).read_bytes())
    steps.start_run(home, "corpus", landing)
    steps.land(home, landing, "corpus")
    summary = steps.stage(home, "hl7", "corpus")
    steps.build_core(home, params.core_params())
    con = duckdb.connect(str(home.warehouse), read_only=True)
    try:
        for table in ("core.fct_lab_result_history", "core.fct_lab_result", "core.dim_patient"):
            passed, n_failures, by_check, _ = validate_table(con, table)
            assert passed, (table, by_check)
        statuses = {
            s
            for (s,) in con.execute(
                "SELECT DISTINCT result_status FROM core.fct_lab_result"
            ).fetchall()
        }
        n_core = con.execute("SELECT count(*) FROM core.fct_lab_result_history").fetchone()[0]
    finally:
        con.close()
    assert statuses <= set(RESULT_STATUSES)
    accepted = sum(rows for _, _, rows, _ in EXPECTED.values())
    assert n_core == accepted, summary
