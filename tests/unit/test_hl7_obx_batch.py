"""The batch OBX reader (polars) reads every segment it accepts exactly as the per-segment
reference ``read_obx`` does, and leaves to it every segment that is a reject or unusual.

The reference is the plain Python reading of one OBX (docs/hl7.md rules); the test builds
OBX segments from many field values (numbers in every form, SN ranges, escapes, non-ASCII,
bad timestamps …), runs both, and compares field by field. A second test parses whole files
twice — as shipped, and with the batch disabled so that every OBX goes through ``read_obx``
— and requires identical frames, rejects and identities.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import polars as pl
import pytest

import transforms.hl7.rows as rows_module
from transforms.hl7 import parse_hl7_file
from transforms.hl7.obx import CONTEXT_SCHEMA, OBX_FIELDS, read_obx, read_obx_batch
from transforms.hl7.parse import DEFAULT_ENCODING
from transforms.hl7.timestamps import BadTimestamp, parse_dtm_us
from transforms.pseudonym import make_pseudonymizer

CORPUS = Path(__file__).parents[2] / ".." / "shared" / "corpus"

VTYPES = [
    "NM", "SN", "ST", "CWE", "CE", "TX", "FT", "", " NM ", "nm", "ED", "NM^^HL70125",
    "SN^Structured Numeric^HL70125", "CWE^^HL70125", "^NM",
]  # fmt: skip
VALUES = [
    "", "5", "18.4", "<5", ">= 300", " 5 ", "5.", ".5", "+5", "-0.5", "007", "1e5", "inf",
    "nan", "1_000", "27~25", "   ", "<^5", "^182", "=^5", "<=^0.5", "^10^-^20", "^1^:^40",
    ">^", "<^abc", "5^", "abc", "Neg^Negative^L", "^Text", "1^2~3^4", "<24", "< 5", "5 mg",
    "0 .07", "\u0665", "a\\F\\b", "\u00b5g", "\t5", "DOE JOHN", "<>5", "1" + "0" * 400,
]  # fmt: skip
UNITS = ["", "pg/mL", "pg/mL^picogram per milliliter^UCUM", "^pg/mL", "\u00b5g/L", "a\\S\\b"]
TIMES = ["", "20230701083000-0700", "20230701083000", "20170229", "2023^x", "junk", "2023", " "]
FLAGS = ["", "N", "A^A^HL70078~B^B", "H~L", "^x"]
METHODS = ["", "LCMS^LC-MS/MS", "^immunoassay", "abc~def^g", "X^"]
CODES = ["E2^Estradiol^L^2243-4^Estradiol^LN", "", "X", "A^^LN", "2243-4^E2^LN^^^^2.1"]
ZONES = ["America/New_York", "Europe/Paris"]


def _segment(rng: random.Random) -> str:
    fields = ["OBX", "1", rng.choice(VTYPES), rng.choice(CODES), rng.choice(["", "1", "a"])]
    fields += [rng.choice(VALUES), rng.choice(UNITS), rng.choice(["", "10-40"])]
    fields += [rng.choice(FLAGS), "", "", rng.choice(["", "F", " C ", "F^Final^HL70085"]), "", ""]
    fields += [rng.choice(TIMES), "", "", rng.choice(METHODS)]
    return "|".join(fields[: rng.choice([3, 6, 12, 15, 18, 18, 18, 18])])


def _obr(text: str, tz: str) -> tuple[int | None, bool]:
    try:
        return parse_dtm_us(text, tz), False
    except BadTimestamp:
        return None, True


def test_batch_reads_like_read_obx() -> None:
    rng = random.Random(7)
    segments, contexts = [], []
    for _ in range(4000):
        seg = _segment(rng)
        tz = rng.choice(ZONES)
        # mostly a readable order time (an OBX with no collection time at all is a reject)
        obx14 = seg.split("|")[14] if seg.count("|") >= 14 else ""
        obr_text = rng.choice(TIMES + [obx14] + ["20230701083000"] * 6)
        collected, bad = _obr(obr_text, tz)
        segments.append(seg)
        contexts.append((collected, bad, obr_text, tz, rng.random() < 0.9))
    context = pl.DataFrame(contexts, schema=CONTEXT_SCHEMA, orient="row")
    out = read_obx_batch(segments, list(range(len(segments))), context)
    assert out.height == len(segments)
    batch_rows = 0
    for seg, (collected, bad, _, tz, default), row in zip(
        segments, contexts, out.iter_rows(named=True), strict=True
    ):
        fields, error, _ = read_obx(seg, DEFAULT_ENCODING, tz, collected, bad)
        if row["_py"]:
            continue
        batch_rows += 1
        assert default, seg  # other encodings are never read by the batch
        assert error is None, (seg, error)  # a reject is never read by the batch
        assert tuple(row[name] for name in OBX_FIELDS) == fields, seg
    # the common shapes are read by the batch (not everything left to Python)
    assert batch_rows > len(segments) // 4


def _lab_file() -> bytes:
    """Messages mixing batch-readable OBX with escapes, another encoding, rejects."""
    out = []
    for i, (vtype, value) in enumerate(
        itertools.product(["NM", "SN", "ST", "CWE", "TX"], ["18.4", "<^5", "1e3", "a\\T\\b", "x"])
    ):
        msh = "MSH|^~\\&|" if i % 7 else "MSH|^~\\&#|"
        out.append(
            f"{msh}LIS|FAC|||2023070{1 + i % 9}083000-0500||ORU^R01|C{i}|P|2.5.1\r"
            f"PID|1||MRN{i % 4}^^^FAC^MR||DOE^JANE||1970|F\r"
            f"OBR|1||F{i}|P^Panel|||20230701083000-0500\r"
            f"OBX|1|NM|E2^Estradiol^L^2243-4^Estradiol^LN||{i}.5|pg/mL|10-40|N|||F|||"
            "20230701083000-0500\r"
            f"OBX|2|{vtype}|TT^Testosterone^L||{value}|ng/dL||A^A^HL70078~B|||F|||2023070108\r"
            f"OBX|3|NM|X^Other^L||{value}|\u00b5g/L|||||F\r"
        )
    return "".join(out).encode()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_lab_file(), id="mixed"),
        pytest.param(
            (CORPUS / "CDCgov_trusted-intermediary/NewSTEPs/002_NewSTEPs_ORU_R01.hl7").read_bytes(),
            id="NewSTEPs",
        ),
        pytest.param(
            (CORPUS / "CDCgov_trusted-intermediary/TN/001_TN_ORU_R01_LRI.hl7").read_bytes(),
            id="TN",
        ),
    ],
)
def test_file_same_with_and_without_batch(data: bytes, monkeypatch) -> None:
    def parse():
        return parse_hl7_file(data, file_sha256="f" * 64, pseudonymize=make_pseudonymizer(b"k"))

    shipped = parse()

    def python_only(segments, segment_index, context):
        out = read_obx_batch(segments, segment_index, context)
        return out.with_columns(pl.lit(True).alias("_py"))

    monkeypatch.setattr(rows_module, "read_obx_batch", python_only)
    reference = parse()
    assert shipped.rows.height > 0
    assert shipped.rows.equals(reference.rows)
    assert shipped.rejects == reference.rejects
    assert shipped.identities == reference.identities
