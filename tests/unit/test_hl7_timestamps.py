"""HL7 DTM → facility-local naive datetime; expected values worked out by hand."""

import datetime as dt

import pytest

from transforms.hl7.timestamps import BadTimestamp, birth_year_and_date, parse_dtm

NY = "America/New_York"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023", dt.datetime(2023, 1, 1)),  # year precision: first instant
        ("202307", dt.datetime(2023, 7, 1)),  # month
        ("20230701", dt.datetime(2023, 7, 1)),  # day: midnight
        ("2023070108", dt.datetime(2023, 7, 1, 8)),  # hour
        ("202307010830", dt.datetime(2023, 7, 1, 8, 30)),  # minute
        ("20230701083015", dt.datetime(2023, 7, 1, 8, 30, 15)),  # second
        ("20230701083015.1234", dt.datetime(2023, 7, 1, 8, 30, 15, 123400)),  # fraction
        ("20230701083015.5", dt.datetime(2023, 7, 1, 8, 30, 15, 500000)),
    ],
)
def test_precisions_without_offset_are_taken_as_local(text, expected):
    assert parse_dtm(text, NY) == expected


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        # 08:30 at UTC-7 = 15:30 UTC = 11:30 EDT (UTC-4 in July)
        ("20230701083000-0700", NY, dt.datetime(2023, 7, 1, 11, 30)),
        # 09:30 at UTC-5 in January = EST itself: unchanged
        ("20230105093000-0500", NY, dt.datetime(2023, 1, 5, 9, 30)),
        # 09:30 UTC = 04:30 EST
        ("20230105093000+0000", NY, dt.datetime(2023, 1, 5, 4, 30)),
        # 15:30 UTC = 17:30 CEST (UTC+2) in Berlin
        ("20230701083000-0700", "Europe/Berlin", dt.datetime(2023, 7, 1, 17, 30)),
        # minute precision with a +0700 offset: 2019-01-01 00:05 at UTC+7 = 12:05 EST the day before
        ("201901010005+0700", NY, dt.datetime(2018, 12, 31, 12, 5)),
        # a half-hour-ish offset: 12:59 at UTC-02:15 = 15:14 UTC = 11:14 EDT
        ("201203141259-0215", NY, dt.datetime(2012, 3, 14, 11, 14)),
    ],
)
def test_offsets_convert_to_the_facility_zone(text, zone, expected):
    assert parse_dtm(text, zone) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a day with an offset is that calendar day: converting its made-up midnight would put
        # it on 30 June (00:00 UTC = 20:00 EDT the day before; 00:00 at UTC+14 = 06:00 EDT)
        ("20230701+0000", dt.datetime(2023, 7, 1)),
        ("20230701+1400", dt.datetime(2023, 7, 1)),
        ("20230701-0500", dt.datetime(2023, 7, 1)),
        # a month, a year: the same (never June, never 2022)
        ("202307+0000", dt.datetime(2023, 7, 1)),
        ("2023+1400", dt.datetime(2023, 1, 1)),
        # from the hour on it is an instant again: 00 h UTC on 1 July = 20:00 EDT on 30 June
        ("2023070100+0000", dt.datetime(2023, 6, 30, 20)),
    ],
)
def test_a_date_without_a_time_keeps_its_day_whatever_its_offset(text, expected):
    assert parse_dtm(text, NY) == expected


def test_empty_is_none():
    assert parse_dtm("", NY) is None
    assert parse_dtm(None, NY) is None


@pytest.mark.parametrize(
    "text",
    [
        "20230231",
        "2023-07-01",
        "2023070",
        "20170229",
        "202307010830.5",
        "20230701-2500",
        "2023+1500",
    ],
)
def test_invalid_timestamps_raise(text):
    with pytest.raises(BadTimestamp):
        parse_dtm(text, NY)


def test_birth_year_and_date():
    assert birth_year_and_date("19580312") == (1958, "1958-03-12")
    assert birth_year_and_date("195803") == (1958, None)
    assert birth_year_and_date("20190411101633+0215") == (2019, "2019-04-11")
    assert birth_year_and_date("") == (None, None)
    assert birth_year_and_date("19580231") == (1958, None)
