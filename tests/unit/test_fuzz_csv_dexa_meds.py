"""Fuzzing the CSV lab, DXA (Hologic CSV, GE Lunar text) and medication parsers.

Inputs: random bytes; random bytes behind the real header of each format; files built from
random cells (valid values, NA markers, censored numbers, garbage, unicode, formula-looking
text) under the real header; and random mutations (byte flips, cuts, duplicated spans,
injected delimiters / quotes / newlines / NUL / BOMs, re-encoding) of the files
``labwh generate`` writes.

Invariants: a parser returns a ``ParseResult`` or raises ``csv.Error`` (the only whole-file
failure these parsers have: a cell over the csv module's 128 KiB field limit, which the
loader quarantines as ``unreadable_file``); every data row of the file (non-blank record
after the header, by physical line) is staged or rejected, never both, a reject once; every
reject has a vocabulary check name and a reason; time per input is bounded (deadline).

Privacy properties: rows whose name cell lost its quotes (cells shifted) quote no identifier
in their rejects (a bug found here, fixed in fc3396d); identifiers typed into the wrong cell
(a name in the date column) are not quoted by reasons either (reported, fixed in b7dbbc2).

Larger runs: ``python scripts/fuzz_long.py --target csv --examples 20000``.
"""

from __future__ import annotations

import csv
import functools
import io
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fuzz_hl7 import mutate

from transforms import textio
from transforms.csv_labs import load_lab_csv_config, parse_lab_csv
from transforms.dexa import load_dexa_config, parse_dexa_file
from transforms.meds import parse_meds_csv
from transforms.pseudonym import make_pseudonymizer
from transforms.records import CHECK_NAMES

EXAMPLES = int(os.environ.get("LABWH_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=5000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
    database=None,
)
PSEUDO = make_pseudonymizer(b"fuzz-key")
SHA = "c" * 64
# identifiers the built files carry in their identity columns
MRNS = ("MRN5550101", "MRN5550102")
NAMES = ("QUIXOTEFAM, ALONSOGIVN", "ZEBRAWSKI, WALBURGA")
DOBS_ISO = ("1958-03-12", "1949-12-31")


# --------------------------------------------------------------------------- targets
@functools.cache
def _configs():
    return {
        "northlab": load_lab_csv_config("northlab"),
        "southlab": load_lab_csv_config("southlab"),
        "hologic": load_dexa_config("hologic"),
        "lunar": load_dexa_config("lunar"),
    }


def run_parser(target: str, data: bytes):
    cfg = _configs().get(target)
    if target in ("northlab", "southlab"):
        return parse_lab_csv(data, file_sha256=SHA, source_config=cfg, pseudonymize=PSEUDO)
    if target in ("hologic", "lunar"):
        name = "enCORE_2022_AP_Spine.txt" if target == "lunar" else "APEX_export.csv"
        return parse_dexa_file(
            data, file_sha256=SHA, vendor=target, file_name=name, pseudonymize=PSEUDO, config=cfg
        )
    return parse_meds_csv(data, file_sha256=SHA, pseudonymize=PSEUDO)


def table_format(target: str) -> tuple[str, str]:
    if target == "meds":
        return "utf-8", ","
    cfg = _configs()[target]
    return cfg.encoding, cfg.delimiter


def data_row_positions(target: str, data: bytes) -> set[str]:
    """Plain reference: physical start line of every non-blank record after the header,
    where a record that ran on through an unclosed quote (wrong cell count, or text right
    after the quote that closed it, which the csv module's strict mode refuses) is its first
    line only, and a header that spans lines is its first line. A new csv reader starts at
    each record's first line."""
    encoding, delimiter = table_format(target)
    lines = io.StringIO(textio.decode(data, encoding), newline="").readlines()
    positions, width, i = [], None, 0
    while i < len(lines):
        reader = csv.reader(iter(lines[i:]), delimiter=delimiter)
        cells = next(reader)
        used = reader.line_num
        if not any(c.strip() for c in cells):
            i += used
            continue
        if width is None:
            width = len(cells) if used == 1 else len(lines[i].rstrip("\r\n").split(delimiter))
            i += 1 if used > 1 else used
            continue
        positions.append(f"line {i + 1}")
        i += (
            1
            if used > 1 and (len(cells) != width or garbled(lines[i : i + used], delimiter))
            else used
        )
    return set(positions)


def garbled(record_lines: list[str], delimiter: str) -> bool:
    """csv's strict mode: a closing quote followed by text ("',' expected after '\"'")."""
    try:
        list(csv.reader(iter(record_lines), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        return "expected after" in str(exc)
    return False


def check_invariants(target: str, data: bytes) -> dict[str, int]:
    try:
        result = run_parser(target, data)
    except csv.Error:  # whole file unreadable: the loader quarantines it as unreadable_file
        with pytest.raises(csv.Error):
            data_row_positions(target, data)
        return {"unreadable": 1}
    row_pos = set(result.rows["position"].to_list())
    rej_pos = [r.position for r in result.rejects]
    assert len(set(rej_pos)) == len(rej_pos), "a row rejected twice"
    assert not row_pos & set(rej_pos), "a row both staged and rejected"
    assert row_pos | set(rej_pos) == data_row_positions(target, data)
    for r in result.rejects:
        assert r.check_name in CHECK_NAMES and r.reason
    return {"rows": len(row_pos), "rejects": len(rej_pos)}


TARGETS = ("northlab", "southlab", "hologic", "lunar", "meds")


# --------------------------------------------------------------------------- seeds
@functools.cache
def generated_files() -> dict[str, list[bytes]]:
    """Files of every target written by ``labwh generate`` (3 patients)."""
    from transforms.generate import generate

    out = Path(tempfile.mkdtemp(prefix="labwh-fuzz-"))
    generate(3, 5, out)
    land = out / "landing"
    globs = {
        "northlab": "lab_csv/northlab/*.csv",
        "southlab": "lab_csv/southlab/*.csv",
        "hologic": "dexa/hologic/*.csv",
        "lunar": "dexa/lunar/*.txt",
        "meds": "meds/*.csv",
    }
    return {t: [p.read_bytes() for p in sorted(land.glob(g))][:4] for t, g in globs.items()}


def header_of(target: str) -> list[str]:
    data = generated_files()[target][0]
    encoding, delimiter = table_format(target)
    return next(csv.reader(io.StringIO(textio.decode(data, encoding)), delimiter=delimiter))


CELLS = [
    "",
    "N/A",
    "-",
    "18.4",
    "<5",
    ">=300",
    "7,3",
    "1,364",
    "5.0 pg/mL",
    "abc",
    "1e309",
    "nan",
    "-0",
    "31/02/2023",
    "2023-01-05 08:30",
    "05.01.2023",
    "04/16/2020",
    "Left",
    "Spine",
    "Hip",
    "E2SENS",
    "199224",
    "daily",
    "Q2W",
    "mg",
    "pg/mL",
    '=HYPERLINK("http://x")',
    "+1+1",
    "@SUM(A1)",
    "Östradiol µ",
    "\u202e\u0000",
    '"quoted, cell"',
    "x" * 300,
]


@st.composite
def built_file(draw) -> tuple[str, bytes]:
    target = draw(st.sampled_from(TARGETS))
    header = header_of(target)
    encoding, delimiter = table_format(target)
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    w.writerow(header)
    for _ in range(draw(st.integers(0, 6))):
        width = len(header) + draw(st.sampled_from([0, 0, 0, -1, 1, -len(header)]))
        w.writerow([draw(st.sampled_from(CELLS)) for _ in range(max(width, 0))])
    data = buf.getvalue().encode(encoding, errors="replace")
    if target == "lunar":
        data = b"\xff\xfe" + buf.getvalue().encode("utf-16-le")
    return target, data


INJECT = [b",", b";", b"\t", b'"', b"\n", b"\r", b"\r\n", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf"]


@st.composite
def mutated_file(draw) -> tuple[str, bytes]:
    target = draw(st.sampled_from(TARGETS))
    data = draw(st.sampled_from(generated_files()[target]))
    return target, mutate(data, draw(st.randoms(use_true_random=False)), INJECT, max_ops=5)


# --------------------------------------------------------------------------- tests
@FUZZ
@given(st.sampled_from(TARGETS), st.binary(max_size=3000))
def test_random_bytes(target, data):
    check_invariants(target, data)


@FUZZ
@given(st.sampled_from(TARGETS), st.binary(max_size=2000))
def test_random_bytes_under_the_real_header(target, tail):
    head = generated_files()[target][0].split(b"\n", 1)[0] + b"\n"
    check_invariants(target, head + tail)


@FUZZ
@given(built_file())
def test_files_built_from_random_cells(case):
    check_invariants(*case)


@FUZZ
@given(mutated_file())
def test_mutated_generated_files(case):
    check_invariants(*case)


@pytest.mark.parametrize("target", TARGETS)
def test_unmutated_generated_files_hold_the_invariants(target):
    totals = [check_invariants(target, d) for d in generated_files()[target]]
    assert sum(t.get("rows", 0) for t in totals) > 0


def test_a_cell_over_the_csv_field_limit_is_one_rejected_row():
    """200 KiB in one cell: that row is put aside (it made the whole file unreadable once)."""
    head, first_row = generated_files()["meds"][0].split(b"\n", 2)[:2]
    data = head + b"\nMRN1,NORTH_CLINIC,order,199224," + b"x" * (200 << 10) + b",1,mg\n"
    result = run_parser("meds", data + first_row + b"\n")
    [reject] = result.rejects
    assert reject.position == "line 2" and "longer than" in reject.reason
    assert reject.excerpt is None  # the row was split plainly: no cell is shown
    assert result.rows.height >= 1  # the row after it is read
    # a header over the limit is no table at all: the file is unreadable
    with pytest.raises(csv.Error):
        run_parser("meds", b"x" * (200 << 10) + b"\n" + first_row)


def _identity_rows(target: str):
    """Rows with known identifiers whose name cell lost its quotes (a classic export bug)."""
    if target == "northlab":
        header = header_of(target)
        # "Family, Given, Suffix" written without quotes: two extra cells
        row = [MRNS[0], NAMES[0] + ", JR", DOBS_ISO[0], "2023-01-05 08:30", "E2SENS", "Estradiol"]
        row += ["18.4", "pg/mL", "10-40", "N", "A1", "F"]
        return ",".join(header) + "\n" + ",".join(row) + "\n"
    header = header_of("hologic")
    # a name with three commas written without quotes: three extra cells
    row = [
        MRNS[1],
        NAMES[1] + ", MARIA, JR",
        "12/31/1949",
        "M",
        "A1",
        "04/16/2020",
        "Spine",
        "",
        "Horizon A",
    ]
    row += ["1", "13", "0.8"] + [""] * (len(header) - 12)
    return ",".join(header) + "\n" + ",".join(row) + "\n"


@pytest.mark.parametrize("target", ["northlab", "hologic"])
def test_rejects_of_misaligned_identity_rows_quote_no_identifier(target):
    result = run_parser(target, _identity_rows(target).encode())
    text = " ".join(f"{r.reason} {r.excerpt}" for r in result.rejects)
    assert result.rejects
    for secret in (*MRNS, *DOBS_ISO, "12/31/1949", "QUIXOTEFAM", "ALONSOGIVN", "WALBURGA"):
        assert secret not in text


@st.composite
def identifier_in_wrong_cell(draw) -> tuple[str, bytes]:
    """A valid row of known identifiers with one identifier typed into another cell, plus
    random delimiter / quote insertions."""
    target = draw(st.sampled_from(["northlab", "hologic"]))
    text = _identity_rows(target)
    head, row = text.splitlines()
    cells = next(csv.reader([row]))
    i = draw(st.integers(3, len(cells) - 1))
    cells[i] = draw(st.sampled_from([MRNS[0], DOBS_ISO[0], "QUIXOTEFAM", "WALBURGA"]))
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(cells)
    line = buf.getvalue()
    for _ in range(draw(st.integers(0, 2))):
        k = draw(st.integers(0, len(line) - 1))
        line = line[:k] + draw(st.sampled_from([",", '"'])) + line[k:]
    return target, (head + "\n" + line).encode()


@FUZZ
@given(identifier_in_wrong_cell())
def test_rejects_never_quote_an_identifier_typed_into_the_wrong_cell(case):
    target, data = case
    result = run_parser(target, data)
    text = " ".join(f"{r.reason} {r.excerpt}" for r in result.rejects)
    for secret in (*MRNS, *DOBS_ISO, "12/31/1949", "QUIXOTEFAM", "ALONSOGIVN", "WALBURGA"):
        assert secret not in text
