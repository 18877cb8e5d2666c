"""Framing: bytes → messages (batches, MLLP, line endings, BOM, decoding, block edges)."""

import io

import pytest

from transforms.hl7.framing import iter_messages

M1 = ["MSH|^~\\&|A|B|C|D|20230105093000||ORU^R01|1|P|2.5.1", "PID|1||X", "OBX|1|NM|C||1"]
M2 = ["MSH|^~\\&|A|B|C|D|20230105093000||ORU^R01|2|P|2.5.1", "PID|1||Y", "OBX|1|NM|C||2"]


def frame(data: bytes, **kw) -> list[tuple[int, list[str], bool]]:
    return [(m.index, m.segments, m.orphan) for m in iter_messages(data, **kw)]


EXPECTED = [(0, M1, False), (1, M2, False)]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("cr", "\r".join(M1 + M2) + "\r"),
        ("lf", "\n".join(M1 + M2) + "\n"),
        ("crlf", "\r\n".join(M1 + M2) + "\r\n"),
        ("mixed", "\r".join(M1) + "\n" + "\r\n".join(M2)),  # no final terminator either
        ("batch", "\r".join(["FHS|^~\\&", "BHS|^~\\&", *M1, *M2, "BTS|2", "FTS|1"])),
        ("batch_no_trailers", "\r".join(["FHS|^~\\&", "BHS|^~\\&", *M1, *M2])),
        ("two_batches", "\r".join(["BHS|^~\\&", *M1, "BTS|1", "BHS|^~\\&", *M2, "BTS|1"])),
        ("mllp", "\x0b" + "\r".join(M1) + "\r\x1c\r\x0b" + "\r".join(M2) + "\r\x1c\r"),
        ("bom", "\ufeff" + "\r".join(M1 + M2)),
        ("blank_lines", "\n\n" + "\r\n".join(M1) + "\r\n\r\n  \r\n" + "\n".join(M2) + "\n\n"),
    ],
)
def test_framings_give_the_same_messages(name, data):
    assert frame(data.encode("utf-8")) == EXPECTED, name


def test_block_edges_do_not_split_lines_or_characters():
    text = "\r\n".join(M1 + ["NTE|1||µµµ résumé"] + M2) + "\r\n"
    whole = frame(text.encode("utf-8"))
    for size in (1, 2, 3, 7, 64):
        assert frame(text.encode("utf-8"), block_bytes=size) == whole
    assert whole[0][1][-1] == "NTE|1||µµµ résumé"


def test_latin1_lines_fall_back_and_utf8_lines_stay():
    data = ("\r".join(M1) + "\rNTE|1||").encode() + "µ-latin".encode("latin-1")
    data += ("\rNTE|2||" + "µ-utf8" + "\r").encode("utf-8")
    [(_, segs, _)] = frame(data)
    assert segs[-2:] == ["NTE|1||µ-latin", "NTE|2||µ-utf8"]


def test_lines_outside_messages_form_orphans():
    data = "\r".join(["PID|1||Z", *M1, "BTS|1", "NTE|stray", *M2]).encode()
    assert frame(data) == [
        (0, ["PID|1||Z"], True),
        (1, M1, False),
        (2, ["NTE|stray"], True),
        (3, M2, False),
    ]


def test_file_objects_and_paths(tmp_path):
    data = ("\r".join(M1 + M2)).encode()
    path = tmp_path / "x.hl7"
    path.write_bytes(data)
    assert frame(data) == [(m.index, m.segments, m.orphan) for m in iter_messages(path)]
    assert frame(data) == [(m.index, m.segments, m.orphan) for m in iter_messages(io.BytesIO(data))]
