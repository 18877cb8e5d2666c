"""Fuzzing the HL7 v2 parser: no crash, no hang, every record accounted for exactly once.

Three kinds of input, all through ``parse_hl7_file`` (the code the loader streams with):
- random bytes, and random bytes behind a plausible ``MSH|^~\\&|`` start;
- structure-aware messages built from random parts (encoding characters, separators, MLLP,
  BOM, batches, value types, broken timestamps, missing PID …) whose records are known by
  construction;
- random mutations (byte flips, cuts, duplications, separator injection, segment shuffles) of
  the real third-party messages in ``../shared/corpus``.

Invariants: the parser returns (never raises: it has no whole-file failure mode, a message it
cannot read is one ``malformed_message`` record); each message is either one reject at
``m<i>`` or exactly one row or reject per OBX segment, never both and never twice; every
reject has a vocabulary check name and a reason; reasons and excerpts never quote the PID
identifiers, names or birth date. Each example must finish within the hypothesis deadline.

Larger runs: ``python scripts/fuzz_long.py --target hl7 --examples 20000``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from transforms.hl7 import parse_hl7_file
from transforms.hl7.framing import iter_messages
from transforms.pseudonym import make_pseudonymizer
from transforms.records import CHECK_NAMES, MALFORMED_MESSAGE

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"
CORPUS_FILES = sorted(CORPUS.rglob("*.hl7"))
EXAMPLES = int(os.environ.get("LABWH_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=5000,  # ms per input: a hang or a quadratic blow-up fails here
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    database=None,
)
PSEUDO = make_pseudonymizer(b"fuzz-key")
# identifiers the structure-aware messages put in PID (never allowed in reasons / excerpts)
MRNS = ("MRN7730041", "MRN7730042", "ZZ99887766")
FAMILY = ("QUIXOTEFAM", "ZEBRAWSKI")
GIVEN = ("ALONSOGIVN", "WALBURGA")
BIRTH = ("19580312", "19491231")
SECRETS = MRNS + FAMILY + GIVEN + BIRTH


def parse(data: bytes):
    return parse_hl7_file(data, file_sha256="f" * 64, pseudonymize=PSEUDO)


def expected_records(data: bytes) -> list[tuple[str, set[str]]]:
    """Per message of the file: (``m<i>``, positions of its OBX segments)."""
    out = []
    for msg in iter_messages(data):
        obx = {f"m{msg.index}/s{j}" for j, seg in enumerate(msg.segments) if j and seg[:3] == "OBX"}
        out.append((f"m{msg.index}", obx))
    return out


def check_invariants(data: bytes, *, secrets: tuple[str, ...] = ()) -> dict[str, int]:
    result = parse(data)  # must not raise
    row_pos = result.rows["position"].to_list()
    rej_pos = [r.position for r in result.rejects]
    assert len(set(row_pos)) == len(row_pos), "a record staged twice"
    assert len(set(rej_pos)) == len(rej_pos), "a record rejected twice"
    assert not set(row_pos) & set(rej_pos), "a record both staged and rejected"
    seen = set(row_pos) | set(rej_pos)
    for whole, obx in expected_records(data):
        mine = {p for p in seen if p == whole or p.startswith(whole + "/")}
        assert mine in ({whole}, obx), (whole, sorted(mine), sorted(obx))
        if mine == {whole} and obx != {whole}:
            assert whole in rej_pos  # a whole message is only ever a reject
    expected_total = sum(1 if (w in rej_pos) else len(obx) for w, obx in expected_records(data))
    assert result.received == len(seen) == expected_total
    for r in result.rejects:
        assert r.check_name in CHECK_NAMES and r.reason
        text = f"{r.reason} {r.excerpt or ''}"
        for s in secrets:
            assert s not in text, (r.check_name, r.reason, r.excerpt)
    for s in secrets:  # identifiers never become a staged column either
        assert not any(s in str(v) for v in result.rows["patient_key"].to_list())
    return {"rows": result.rows.height, "rejects": len(result.rejects)}


# --------------------------------------------------------------------------- random bytes
@FUZZ
@given(st.binary(max_size=4000))
def test_random_bytes(data):
    check_invariants(data)


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from([b"\r", b"\n", b"\r\n", b"\x1c\r\x0b"]))
def test_random_bytes_after_a_plausible_header(tail, sep):
    check_invariants(b"MSH|^~\\&|" + tail + sep + b"OBX|" + tail[:50])


# --------------------------------------------------------------------------- structure-aware
# valid choices repeated so that most generated messages get deep into the parser
ENCODINGS = [("|", "^~\\&")] * 12 + [("|", "^~\\&#"), ("#", "$%@!"), ("|", "^^\\&"), ("a", "^~\\&")]
TIMESTAMPS = ["20230105083000-0500", "20230105"] * 8 + [
    "2023",
    "20231399",
    "",
    "2023010508300",
    "x",
]
VALUES = [
    ("NM", "18.4"),
    ("NM", "<5"),
    ("NM", "abc"),
    ("NM", "1e309"),
    ("SN", "<^5"),
    ("SN", "^10^-^20"),
    ("SN", "~^x"),
    ("ST", "hemolyzed \\F\\ sample"),
    ("CWE", "POS^Positive^L"),
    ("TX", "\\X41\\\\.br\\line"),
    ("NM", ""),
    ("", "7"),
]
CODES = ["E2^Estradiol^L^2243-4^Estradiol^LN", "TT^Testo^L", "", "X^^^^^", "\\E\\^q"]
UNITS = ["pg/mL", "pmol/L", "furlongs", "", "ng/dL^^UCUM"]


@st.composite
def hl7_file(draw) -> tuple[bytes, tuple[str, ...]]:
    sep = draw(st.sampled_from(["\r", "\n", "\r\n"]))
    msgs = []
    for m in range(draw(st.integers(1, 4))):
        fs, chars = draw(st.sampled_from(ENCODINGS))
        cs = chars[0]
        mtype = draw(st.sampled_from(["ORU^R01^ORU_R01"] * 10 + ["ORU", "ADT^A01", "OUL^R22"]))
        mtype = mtype.replace("^", cs)
        segs = [
            fs.join(
                ["MSH", chars, "LABWH_LIS", "NORTH_CLINIC", "LABWH", "LABWH"]
                + [draw(st.sampled_from(TIMESTAMPS)), "", mtype, f"MSG{m}", "P", "2.5.1"]
            )
        ]
        for _ in range(draw(st.integers(1, 2))):
            if draw(st.integers(0, 5)):  # mostly with a PID
                mrn = draw(st.sampled_from((*MRNS, "")))
                name = draw(st.sampled_from(FAMILY)) + cs + draw(st.sampled_from(GIVEN))
                pid3 = mrn + cs * 3 + "NORTH_CLINIC" + cs + "MR" if mrn else ""
                segs.append(
                    fs.join(["PID", "1", "", pid3, "", name, "", draw(st.sampled_from(BIRTH)), "M"])
                )
            for _ in range(draw(st.integers(1, 2))):
                if draw(st.integers(0, 5)):  # mostly with an OBR
                    obr = [
                        "OBR",
                        "1",
                        "",
                        "FIL1",
                        "HORM",
                        "",
                        "",
                        draw(st.sampled_from(TIMESTAMPS)),
                    ]
                    segs.append(fs.join(obr + [""] * 17 + ["F"]))
                for k in range(draw(st.integers(1, 3))):
                    vtype, value = draw(st.sampled_from(VALUES))
                    obx = ["OBX", str(k + 1), vtype, draw(st.sampled_from(CODES)), "", value]
                    obx += [draw(st.sampled_from(UNITS)), "", "", "", "", "F", "", ""]
                    obx.append(draw(st.sampled_from(TIMESTAMPS)))
                    segs.append(fs.join(obx))
                if draw(st.integers(0, 9)) == 0:
                    segs.append(draw(st.sampled_from(["NTE|1||note", "ZXY|1", "bad|1", "OB"])))
        msgs.append(sep.join(segs))
    body = sep.join(msgs) + sep
    framing = draw(st.sampled_from(["plain", "mllp", "batch", "bom"]))
    if framing == "mllp":
        body = "".join("\x0b" + m + sep + "\x1c\r" for m in msgs)
    elif framing == "batch":
        body = "FHS|^~\\&" + sep + "BHS|^~\\&" + sep + body + "BTS|1" + sep
    elif framing == "bom":
        body = "\ufeff" + body
    encoding = draw(st.sampled_from(["utf-8", "latin-1"]))
    return body.encode(encoding, errors="replace"), SECRETS


@FUZZ
@given(hl7_file())
def test_structure_aware_messages(case):
    data, secrets = case
    check_invariants(data, secrets=secrets)


# --------------------------------------------------------------------------- corpus mutations
INJECT = [b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"\x0b", b"\x1c", b"\x00", b"\xff", b"MSH|"]


def mutate(data: bytes, rnd, inject: list[bytes], max_ops: int = 6) -> bytes:
    """Random edits spread uniformly over the file (shared with the CSV fuzz tests)."""
    out = bytearray(data)
    for _ in range(rnd.randint(1, max_ops)):
        if not out:
            break
        i = rnd.randrange(len(out))
        j = min(len(out), i + rnd.randint(1, 64))
        op = rnd.choice(["flip", "cut", "dup", "inject", "truncate", "swap"])
        if op == "flip":
            out[i] ^= 1 << rnd.randrange(8)
        elif op == "cut":
            del out[i:j]
        elif op == "dup":
            out[i:i] = out[i:j]
        elif op == "inject":
            out[i:i] = rnd.choice(inject)
        elif op == "truncate":
            del out[i:]
        else:  # swap two lines
            lines = bytes(out).splitlines(keepends=True)
            a, b = rnd.randrange(len(lines)), rnd.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
            out = bytearray(b"".join(lines))
    return bytes(out)


@st.composite
def mutated_corpus(draw) -> bytes:
    data = draw(st.sampled_from(CORPUS_FILES)).read_bytes()
    return mutate(data, draw(st.randoms(use_true_random=False)), INJECT)


@pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus not present")
@FUZZ
@given(mutated_corpus())
def test_mutated_corpus_messages(data):
    check_invariants(data)


@pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus not present")
def test_every_corpus_file_unmutated_holds_the_invariants():
    totals = [check_invariants(p.read_bytes()) for p in CORPUS_FILES]
    assert sum(t["rows"] for t in totals) > 100  # the corpus really is parsed, not rejected


def test_a_message_that_cannot_be_read_is_one_record():
    data = b"MSH|^~\\&|A|B|C|D|notatime||ORU^R01|1|P|2.5.1\rPID|1||X^^^F^MR\rOBX|1|NM|E2||1|pg/mL\r"
    result = parse(data)
    assert [(r.position, r.check_name) for r in result.rejects] == [("m0", MALFORMED_MESSAGE)]
    assert result.rows.height == 0


def test_long_single_line_finishes_quickly():
    """2 MB in one segment (no terminator): parsed in bounded time, one record."""
    data = b"MSH|^~\\&|A|B|C|D|20230101||ORU^R01|1|P|2.5.1|" + b"A" * (2 << 20)
    assert check_invariants(data) == {"rows": 0, "rejects": 0}
