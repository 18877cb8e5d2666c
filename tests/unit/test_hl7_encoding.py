"""Encoding characters from MSH-1/MSH-2 and escape sequences, worked out by hand."""

import pytest

from transforms.hl7.parse import (
    DEFAULT_ENCODING,
    Encoding,
    MalformedMessage,
    components,
    read_encoding,
    unescape,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"A\F\B", "A|B"),
        (r"A\S\B", "A^B"),
        (r"A\T\B", "A&B"),
        (r"A\R\B", "A~B"),
        (r"A\E\B", "A\\B"),
        (r"\X41\BC", "ABC"),
        (r"\XC2B5\mol/L", "µmol/L"),  # UTF-8 bytes C2 B5 = µ
        (r"line1\.br\line2", "line1\nline2"),
        (r"\H\bold\N\ text", "bold text"),  # highlighting carries no text
        (r"keep \Z12\ as sent", r"keep \Z12\ as sent"),  # unknown escape: literal
        (r"dangling \F", r"dangling \F"),  # no closing escape: literal
        ("\\F\\\\S\\", "|^"),  # two sequences back to back: \F\\S\
        ("no escapes", "no escapes"),
    ],
)
def test_unescape(text, expected):
    assert unescape(text, DEFAULT_ENCODING) == expected


def test_unescape_uses_the_message_encoding():
    enc = Encoding(fs="#", cs="*", rs="@", ec="!", ss="%")
    assert unescape("a!F!b!S!c!R!d!E!e!T!f", enc) == "a#b*c@d!e%f"


def test_components_split_before_unescaping():
    # \S\ inside a component is a literal '^', not a component break
    assert components(r"E2^Estradiol \S\ total^L", DEFAULT_ENCODING, 4) == [
        "E2",
        "Estradiol ^ total",
        "L",
        "",
    ]


def test_read_encoding_default_and_custom():
    assert read_encoding("MSH|^~\\&|APP") == DEFAULT_ENCODING
    assert read_encoding("MSH#^~\\&#APP") == Encoding("#", "^", "~", "\\", "&")
    assert read_encoding("MSH|*~\\&|APP") == Encoding("|", "*", "~", "\\", "&")
    assert read_encoding("MSH|^~\\&#|APP") == DEFAULT_ENCODING  # 2.7+ truncation char


@pytest.mark.parametrize(
    "msh", ["MSH|^~|APP", "MSH|^^\\&|APP", "MSH|A~\\&|APP", "MSH|^~\\&^~|X", "MSH", "PID|1"]
)
def test_bad_encoding_characters(msh):
    with pytest.raises(MalformedMessage):
        read_encoding(msh)
