import hashlib
import hmac

from transforms.pseudonym import make_pseudonymizer


def test_key_is_hmac_of_namespace_and_identifier():
    f = make_pseudonymizer(b"k")
    expected = "pk_" + hmac.new(b"k", b"NORTH_CLINIC|MRN1", hashlib.sha256).hexdigest()[:20]
    assert f("north_clinic", " MRN1 ") == expected


def test_key_depends_on_secret_and_namespace():
    a, b = make_pseudonymizer(b"k1"), make_pseudonymizer(b"k2")
    assert a("X", "1") != b("X", "1")
    assert a("X", "1") != a("Y", "1")
    assert "MRN0001" not in a("X", "MRN0001")


def test_a_whole_number_written_as_a_float_is_the_same_identifier():
    # a spreadsheet or dataframe export writes MRN 1234 as `1234.0`: the same patient; any
    # other fraction, or letters, is an identifier as sent
    f = make_pseudonymizer(b"k")
    expected = "pk_" + hmac.new(b"k", b"NS|1234", hashlib.sha256).hexdigest()[:20]
    assert f("NS", "1234.0") == f("NS", " 1234.00 ") == f("NS", "1234") == expected
    assert len({f("NS", "1234"), f("NS", "1234.5"), f("NS", "A1234.0"), f("NS", "1234.")}) == 4
