from transforms.redact import shape, shown, token


def test_shape_keeps_form_not_text():
    assert shape("Müller") == "aaaaaa"
    assert shape("31/02/2023") == "99/99/9999"
    assert shape(None) == "(empty)"
    assert shape("x" * 30).endswith("…") and len(shape("x" * 30)) == 25


def test_shown_passes_numbers_and_shapes_the_rest():
    assert shown("<5") == "<5" and shown("7,3") == "7,3" and shown("-1") == "-1"
    assert shown("abc") == "aaa"
    assert shown("12/31/1949") == "99/99/9999"  # a date may be a birth date
    assert shown("5550102") == "9999999"  # a bare number long enough to be an MRN


def test_token_keeps_units_and_codes_but_not_names_or_mrns():
    for kept in ("pg/mL", "ng/dL", "m[IU]/mL", "E2SENS", "2243-4", "puff", "10*3/uL"):
        assert token(kept) == kept
    assert token("WALBURGA") == "aaaaaaaa"
    assert token("MRN5550102") == "aaa9999999"
    assert token("Doe John") == "aaa aaaa"


def test_shown_shapes_digit_groups_joined_by_hyphens():
    # a birth date, a social security number, a phone number typed into a value cell
    assert shown("1958-03-12") == "9999-99-99"
    assert shown("123-45-6789") == "999-99-9999"
    assert shown("555-867-5309") == "999-999-9999"
    # numbers as labs write them stay as they are
    for kept in ("0 .07", ">= 300", "1,364", "-0.5", ".5", "=5", "12 500", "12500"):
        assert shown(kept) == kept


def test_shown_shapes_dates_and_phones_split_by_dots_or_spaces():
    assert shown("12.03.1958") == "99.99.9999"  # a German birth date
    assert shown("1.3.58") == "9.9.99"
    assert shown("555 867 5309") == "999 999 9999"
    assert shown("0 555 867") == "9 999 999"
    assert shown("1,364,000") == "9,999,999"  # seven digits: could be a phone
    assert shown("12.5") == "12.5" and shown("1 234") == "1 234"
    assert shown("12,03,58") == "99,99,99"  # a date written with commas


def test_shown_keeps_decimals_with_many_digits():
    for kept in ("0.0001234", "12345.67", "123.4567", "95000.00", "21.700000000000003", "<0,00012"):
        assert shown(kept) == kept
    assert shown("5550102") == "9999999" and shown("1234567890") == "9999999999"
