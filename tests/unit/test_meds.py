"""Medication records: dose in mg, doses per day, end date vs days supply, rejects."""

from __future__ import annotations

import datetime as dt

import pytest

from schemas.staging import StgMedication, columns_of
from transforms.meds import load_med_rules, parse_meds_csv


def fake_pseudonymize(namespace: str, identifier: str) -> str:
    return f"{namespace}|{identifier}"


HEADER = (
    "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
    "frequency,start_date,end_date,days_supply,quantity"
)
ROWS = [
    "MRN001,NORTH_CLINIC,dispense,199224,anastrozole 1 MG Oral Tablet,1,tablet,daily,2023-01-01,,30,30",  # 2
    "MRN001,NORTH_CLINIC,order,835840,testosterone cypionate 200 MG/ML,0.5,mL,every 2 weeks,2023-01-01,2023-03-31,,1",  # 3
    "MRN001,NORTH_CLINIC,dispense,151124,Arimidex,1,mg,EOD,2023-02-01,,28,14",  # 4
    "MRN002,NORTH_CLINIC,order,835840,testosterone cypionate,100,mg,BIW,2023-01-01,2023-01-28,,",  # 5
    "MRN002,NORTH_CLINIC,order,835840,testosterone cypionate,200,mg,QW,2023-01-01,,,",  # 6 neither
    ",NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-01-01,,30,30",  # 7
    "MRN002,,dispense,199224,anastrozole,1,tablet,daily,2023-01-01,,30,30",  # 8
    "MRN002,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,three times a fortnight,2023-01-01,,30,30",  # 9
    "MRN002,NORTH_CLINIC,dispense,199224,anastrozole,1,spoon,daily,2023-01-01,,30,30",  # 10
    "MRN002,NORTH_CLINIC,dispense,999999,Vitamin D3,1000,IU,daily,2023-01-01,,90,90",  # 11
    "MRN002,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,Q2W,2023/01/01,,30,",  # 12
    "MRN002,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-03-01,2023-02-01,,",  # 13
    "MRN002,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-03-01,,0,",  # 14
    "MRN002,NORTH_CLINIC,dispense,199224,anastrozole,one,tablet,daily,2023-03-01,,30,30",  # 15
    "MRN002,NORTH_CLINIC,dispense,835840,testosterone,0.5,mL,Q2W,2023-03-01,2023-03-28,30,1",  # 16
    "MRN002,NORTH_CLINIC,refill,199224,anastrozole,1,tablet,daily,2023-04-01,,30,30",  # 17
    "MRN002,NORTH_CLINIC,dispense,199224,,1,tablet,,2023-04-01,,30,",  # 18
]


@pytest.fixture
def meds():
    data = (HEADER + "\n" + "\n".join(ROWS) + "\n").encode()
    return parse_meds_csv(data, file_sha256="sha-m", pseudonymize=fake_pseudonymize)


def row(result, line: int) -> dict:
    rows = result.rows.filter(result.rows["position"] == f"line {line}").to_dicts()
    assert len(rows) == 1
    return rows[0]


def test_counts_and_rejects(meds):
    assert meds.rows.schema == columns_of(StgMedication)
    assert meds.received == 17
    assert [(r.position, r.check_name) for r in meds.rejects] == [
        ("line 6", "unparseable_value"),  # neither end_date nor days_supply
        ("line 7", "missing_patient_id"),
        ("line 8", "missing_patient_id"),  # no identifier namespace
        # line 9: a frequency no rule reads loads flagged (test_frequency_no_rule_reads_is_flagged)
        ("line 10", "unknown_unit"),  # anastrozole in 'spoon'
        ("line 12", "unparseable_value"),  # 2023/01/01
        ("line 13", "unparseable_value"),  # end before start
        ("line 14", "implausible_value"),  # days_supply 0: no supply
        ("line 15", "unparseable_value"),  # dose 'one'
        ("line 17", "unparseable_value"),  # record_type 'refill'
    ]
    text = " ".join(f"{r.reason} {r.excerpt}" for r in meds.rejects)
    assert "MRN" not in text


def test_tablet_daily_with_days_supply(meds):
    r = row(meds, 2)
    assert r["patient_key"] == "NORTH_CLINIC|MRN001"
    assert (r["ingredient"], r["dose_mg"], r["doses_per_day"]) == ("anastrozole", 1.0, 1.0)
    # 2023-01-01 + 30 − 1 days = 2023-01-30
    assert (r["start_date"], r["end_date"], r["days_supply"]) == (
        dt.date(2023, 1, 1),
        dt.date(2023, 1, 30),
        30,
    )
    assert (r["record_type"], r["quantity"], r["source_system"]) == ("dispense", 30.0, "meds")


def test_what_was_sent_and_what_was_derived(meds):
    # line 2 sent a days supply (its end derived), line 3 an end date (its supply derived)
    flags = ("end_date_is_derived", "days_supply_is_derived")
    assert tuple(row(meds, 2)[f] for f in flags) == (True, False)
    assert tuple(row(meds, 3)[f] for f in flags) == (False, True)
    assert tuple(row(meds, 16)[f] for f in flags) == (False, False)  # both sent


def test_injection_ml_times_strength_and_end_date_given(meds):
    r = row(meds, 3)
    # 0.5 mL × 200 mg/mL = 100 mg every 14 days; Jan 1 – Mar 31 = 31 + 28 + 31 = 90 days
    assert (r["ingredient"], r["dose_mg"]) == ("testosterone", 100.0)
    assert r["doses_per_day"] == pytest.approx(1 / 14, abs=1e-15)
    assert (r["end_date"], r["days_supply"]) == (dt.date(2023, 3, 31), 90)


def test_brand_code_mass_unit_and_every_other_day(meds):
    r = row(meds, 4)
    assert (r["ingredient"], r["dose_mg"], r["doses_per_day"]) == ("anastrozole", 1.0, 0.5)
    assert r["end_date"] == dt.date(2023, 2, 28)  # Feb 1 + 28 − 1


def test_twice_weekly_and_end_date_only(meds):
    r = row(meds, 5)
    assert r["doses_per_day"] == pytest.approx(2 / 7, abs=1e-15)
    assert (r["dose_mg"], r["days_supply"], r["quantity"]) == (100.0, 28, None)


def test_uncatalogued_drug_loads_without_ingredient(meds):
    r = row(meds, 11)
    assert (r["ingredient"], r["dose_mg"], r["dose_value"], r["dose_unit"]) == (
        None,
        None,
        1000.0,
        "IU",
    )


def test_end_date_as_sent_wins_over_days_supply(meds):
    r = row(meds, 16)
    assert (r["end_date"], r["days_supply"]) == (dt.date(2023, 3, 28), 30)


def test_empty_frequency_is_null(meds):
    r = row(meds, 18)
    assert (r["frequency"], r["doses_per_day"], r["drug_name"]) == (None, None, None)
    assert r["frequency_is_unread"] is False


def test_frequency_no_rule_reads_is_flagged(meds):
    r = row(meds, 9)
    assert (r["frequency"], r["doses_per_day"], r["frequency_is_unread"]) == (
        "three times a fortnight",
        None,
        True,
    )
    assert (r["end_date"], r["dose_mg"]) == (dt.date(2023, 1, 30), 1.0)


def test_identities(meds):
    assert sorted(i.identifier for i in meds.identities) == ["MRN001", "MRN002"]
    assert all(i.namespace == "NORTH_CLINIC" for i in meds.identities)


@pytest.mark.parametrize(
    ("text", "per_day"),
    [
        ("daily", 1),
        ("QD", 1),
        ("once daily", 1),
        ("BID", 2),
        ("twice daily", 2),
        ("twice weekly", 2 / 7),
        ("BIW", 2 / 7),
        ("weekly", 1 / 7),
        ("QW", 1 / 7),
        ("every 2 weeks", 1 / 14),
        ("Q2W", 1 / 14),
        ("EOD", 0.5),
        ("Every-Other-Day", 0.5),
        ("every 3 days", 1 / 3),
        ("q8h", 3),
        ("every 10 days", 1 / 10),
        ("Q3W", 1 / 21),
        # dotted abbreviations are rules of their own (config/medication_frequencies.csv)
        ("q.d.", 1),
        ("b.i.d.", 2),
        ("t.i.d.", 3),
        ("Q.I.D.", 4),
        ("daily.", 1),
        # frequencies of real prescriptions (anastrozole 0.5 mg twice weekly is every 3.5 days)
        ("every 3.5 days", 1 / 3.5),
        ("q3.5d", 1 / 3.5),
        ("Q3.5D", 1 / 3.5),
        ("E3.5D", 1 / 3.5),
        ("q.o.d.", 0.5),
        ("Q.O.D.", 0.5),
        ("2x/week", 2 / 7),
        ("2x/wk", 2 / 7),
        ("2 x/wk", 2 / 7),
        ("3x/wk", 3 / 7),
        ("1x/week", 1 / 7),
        ("2 times a week", 2 / 7),
        ("2x per wk", 2 / 7),
        ("MWF", 3 / 7),
        ("M/W/F", 3 / 7),
        ("mon wed fri", 3 / 7),
        ("Mon, Wed, Fri", 3 / 7),
        ("Monday, Wednesday and Friday", 3 / 7),
        ("mon/thu", 2 / 7),
        ("twice a week", 2 / 7),
        ("twice per week", 2 / 7),
        ("twice/week", 2 / 7),
        ("twice a wk", 2 / 7),
        ("two times a week", 2 / 7),
        ("2x/day", 2),
        # sig text: the rule found inside it; the longest match wins where matches nest
        ("1 tab PO twice weekly", 2 / 7),  # not `weekly`
        ("1 tab PO twice daily", 2),  # not `daily`
        ("Take 0.5 tablet every other day", 0.5),  # not `every day`-like
        ("1 tablet by mouth daily", 1),
        ("daily as directed", 1),
        ("Take 1 tablet by mouth three times weekly", 3 / 7),
        ("take 1 tab po qd.", 1),
        ("0.5 tab q3.5d", 1 / 3.5),
        ("1 tab every 2 weeks", 1 / 14),
        ("Take 1 tablet by mouth once daily for 90 days", 1),
        ("1 tab po MWF with food", 3 / 7),
        # `except` / `not` that name no day are no exception; three weekdays are a list
        ("1 tab daily, not on an empty stomach", 1),
        ("1 tab daily but not with grapefruit juice", 1),
        ("daily except if nauseous", 1),
        ("1 tab mon - wed - fri", 3 / 7),
    ],
)
def test_frequency_rules(text, per_day):
    assert load_med_rules().doses_per_day(text) == pytest.approx(per_day, abs=1e-15)


@pytest.mark.parametrize("text", ["sometimes", "as needed", "every 0 days"])
def test_frequency_without_rule(text):
    assert load_med_rules().doses_per_day(text) is None


def test_days_supply_past_the_last_date_rejects_its_row_only():
    # a 30000000-day supply (a typo) cannot end before year 9999: that row is put aside, the
    # file's other row loads (the overflow once made the whole file unreadable)
    data = "\n".join(
        [
            HEADER,
            "MRN001,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-01-01,,30,30",
            "MRN001,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-02-01,,30000000,30",
            "MRN001,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-03-01,,1e400,30",
        ]
    ).encode()
    result = parse_meds_csv(data, file_sha256="s", pseudonymize=fake_pseudonymize)
    assert result.rows["position"].to_list() == ["line 2"]
    assert [(r.position, r.check_name) for r in result.rejects] == [
        ("line 3", "unparseable_value"),
        ("line 4", "unparseable_value"),
    ]
    assert "9999" in result.rejects[0].reason


@pytest.mark.parametrize("text", ["every " + "9" * 5000 + " days", "q" + "9" * 400 + "d"])
def test_frequency_with_an_absurd_number_has_no_rule(text):
    assert load_med_rules().doses_per_day(text) is None


def _one_file(*rows: str):
    data = "\n".join([HEADER, *rows]).encode()
    return parse_meds_csv(data, file_sha256="s", pseudonymize=fake_pseudonymize)


def test_rows_that_once_broke_the_file_are_rejected_alone():
    result = _one_file(
        "MRN001,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-01-01,,30,30",
        # 20-digit supply with an end date (no longer a polars overflow of the whole file)
        "MRN001,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-02-01,2023-03-01,"
        + "9" * 20 + ",30",
        "MRN001,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,every " + "9" * 5000
        + " days,2023-02-01,,30,30",
    )  # fmt: skip
    # an absurd interval is no schedule: that dispense loads flagged, without doses per day
    assert result.rows["position"].to_list() == ["line 2", "line 4"]
    assert result.rows["frequency_is_unread"].to_list() == [False, True]
    assert [(r.position, r.check_name) for r in result.rejects] == [("line 3", "unparseable_value")]


@pytest.mark.parametrize(
    "cell", ["20230105", "2023-W01-4", "2023-01-05 08:30", "2023-01-06T03:30:00Z"]
)
def test_dates_other_than_yyyy_mm_dd_are_rejected(cell):
    """`…T03:30:00Z` is 5 January in New York: read as the 6th it would move the episode."""
    result = _one_file(
        f"MRN001,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,{cell},,30,30"
    )
    assert result.rows.height == 0
    [reject] = result.rejects
    assert "is not a YYYY-MM-DD date" in reject.reason


def test_the_same_stray_quote_on_two_rows_loses_neither_into_the_other():
    """Both rows open a quote in the same column: joined they would have the header's width,
    one dispense with the other's dates. Each is put aside on its own line."""
    result = _one_file(
        'MRN001,NORTH_CLINIC,dispense,199224,"anastrozole 1 mg tablet,1,tablet,daily,2023-01-01,,30,30',
        'MRN002,NORTH_CLINIC,dispense,199224,"anastrozole 1 mg tablet,1,tablet,daily,2023-06-01,,30,30',
        "MRN003,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-07-01,,30,30",
    )  # fmt: skip
    assert result.rows["position"].to_list() == ["line 4"]
    assert [(r.position, r.check_name) for r in result.rejects] == [
        ("line 2", "unparseable_value"),
        ("line 3", "unparseable_value"),
    ]
    assert all("quote" in r.reason for r in result.rejects)


@pytest.mark.parametrize(
    ("cell", "ingredient"),
    [("199224.0", "anastrozole"), ("199224.00", "anastrozole"), ("199224.5", None)],
)
def test_rxnorm_code_written_as_a_float_by_a_spreadsheet(cell, ingredient):
    result = _one_file(
        f"MRN001,NORTH_CLINIC,dispense,{cell},anastrozole,1,mg,daily,2023-01-01,,30,30"
    )
    assert result.rejects == []
    assert result.rows["ingredient"].to_list() == [ingredient]


@pytest.mark.parametrize(
    ("drug", "dose", "unit", "mg"),
    [
        ("199224", "1", "tab(s)", 1.0),  # one 1 mg tablet
        ("199224", "0.5", "Tab(s)", 0.5),
        ("199224", "1", "milligrams", 1.0),
        ("835840", "0.5", "cc", 100.0),  # 0.5 cc = 0.5 mL × 200 mg/mL
        ("835840", "1", "CC", 200.0),
    ],
)
def test_dose_units_pharmacy_systems_write(drug, dose, unit, mg):
    result = _one_file(
        f"MRN001,NORTH_CLINIC,dispense,{drug},x,{dose},{unit},daily,2023-01-01,,30,30"
    )
    assert result.rejects == []
    assert result.rows["dose_mg"].to_list() == [mg]


# --- open-ended placeholders (9999-12-31, 2099-12-31, any year ≥ 2100) -----------------------


@pytest.mark.parametrize("end", ["9999-12-31", "2099-12-31", "2100-01-01", "2150-06-30"])
def test_an_open_ended_placeholder_end_date_is_no_end_date(end):
    # the days supply gives the end, as when the end is empty: 2022-01-01 + 30 − 1 = 2022-01-30
    result = _one_file(
        f"MRN001,NORTH_CLINIC,dispense,199224,anastrozole,1,mg,daily,2022-01-01,{end},30,30"
    )
    assert result.rejects == []
    r = result.rows.to_dicts()[0]
    assert (r["start_date"], r["end_date"], r["days_supply"]) == (
        dt.date(2022, 1, 1),
        dt.date(2022, 1, 30),
        30,
    )


def test_an_end_date_before_the_placeholders_is_a_date():
    # 2099-12-30 is no placeholder: kept as sent (the dispense bound of validation judges it)
    result = _one_file(
        "MRN001,NORTH_CLINIC,dispense,199224,anastrozole,1,mg,daily,2022-01-01,2099-12-30,,30"
    )
    r = result.rows.to_dicts()[0]
    assert (r["end_date"], r["days_supply"]) == (dt.date(2099, 12, 30), 28488)


def test_an_open_ended_order_loads_without_an_end_but_a_dispense_needs_one():
    # an order "until stopped" is a real order: it loads with no end and no days supply
    # (exposure cannot use it); a dispense always supplies a number of days
    result = _one_file(
        "MRN001,NORTH_CLINIC,order,199224,anastrozole,1,mg,daily,2022-01-01,9999-12-31,,",
        "MRN001,NORTH_CLINIC,dispense,199224,anastrozole,1,mg,daily,2022-01-01,9999-12-31,,30",
        "MRN001,NORTH_CLINIC,,199224,anastrozole,1,mg,daily,2022-01-01,2099-12-31,,30",
        "MRN001,NORTH_CLINIC,order,199224,anastrozole,1,mg,daily,2022-01-01,9999-12-31,90,",
    )
    got = result.rows.select("position", "end_date", "days_supply").rows()
    assert got == [("line 2", None, None), ("line 5", dt.date(2022, 3, 31), 90)]
    rejects = {r.position: r for r in result.rejects}
    assert sorted(rejects) == ["line 3", "line 4"]
    for reject in rejects.values():
        assert reject.check_name == "unparseable_value"
        assert "open-ended placeholder" in reject.reason


# --- frequencies of real prescriptions and sig text ------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "as directed",
        "take as needed",
        # two schedules in one sig (a taper, a correction): no single rule, not a guess
        "daily x 7 days then every other day",
        "1 tab daily (0.5 tab twice weekly)",
        # a rule's letters inside a word are no rule (`od` of `food`, `bid` of `forbid`)
        "take with food",
        "forbidden",
        # the 2 of 1.2 is not a count
        "1.2x/week",
        # a range of weekdays or an exception is no list of named days: not a guess either
        "1 tab Mon-Fri",
        "tue - sat",
        "Mon–Thu",
        "mon to fri",
        "Monday through Friday",
        "daily except sun",
        "1 tab daily except weekends",
    ],
)
def test_sig_text_without_one_schedule_reads_as_no_rule(text):
    assert load_med_rules().doses_per_day(text) is None


def test_a_frequency_no_rule_reads_keeps_the_dispense_flagged():
    # finding: `every 3.5 days` / a sig put the whole dispense aside; a text still no rule reads
    # keeps the record (its dates give the exposure) with doses_per_day NULL, flagged
    result = _one_file(
        "MRN001,NORTH_CLINIC,dispense,199224,anastrozole,0.5,tablet,every 3.5 days,2022-01-01,,91,13",
        "MRN001,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,1 tab PO twice weekly,2022-04-01,,91,26",
        "MRN001,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,per Dr Smith John,2022-07-01,,91,26",
        "MRN001,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,,2022-10-01,,91,26",
    )  # fmt: skip
    assert result.rejects == []
    got = result.rows.select("doses_per_day", "frequency_is_unread").rows()
    assert got == [
        (pytest.approx(2 / 7), False),
        (pytest.approx(2 / 7), False),
        (None, True),
        (None, False),
    ]
