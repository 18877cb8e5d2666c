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
