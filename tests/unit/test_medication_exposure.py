"""core.medication_exposure: exposure episodes (gaps-and-islands), hand-worked cases.

Gap = days without supply between the running episode end and the next start
(start − end − 1); gap ≤ persistence window (30) is merged.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.staging import StgMedication, columns_of
from transforms.meds import parse_meds_csv
from warehouse.runner import materialize

D = dt.date
PARAMS = {"persistence_window_days": 30}


def fct(records: list[dict]) -> pl.DataFrame:
    base = {"file_sha256": "s", "position": "line 1", "source_system": "meds"}
    return pl.DataFrame([{**base, **r} for r in records], schema=columns_of(StgMedication))


def med(key, ingredient, start, end, dose_mg=1.0, per_day=1.0, record_type=None) -> dict:
    return {
        "record_type": record_type,
        "patient_key": key,
        "ingredient": ingredient,
        "start_date": start,
        "end_date": end,
        "dose_mg": dose_mg,
        "doses_per_day": per_day,
    }


def load(con, frame: pl.DataFrame) -> None:
    con.execute("CREATE SCHEMA IF NOT EXISTS core")
    con.register("frame_in", frame.to_arrow())
    con.execute("CREATE OR REPLACE TABLE core.fct_medication AS SELECT * FROM frame_in")
    con.unregister("frame_in")


def episodes(con, key: str, ingredient: str) -> list[tuple]:
    return con.execute(
        "SELECT episode_start, episode_end, days_exposed, cumulative_dose_mg, n_records "
        "FROM core.medication_exposure WHERE patient_key = $k AND ingredient = $i "
        "ORDER BY episode_start",
        {"k": key, "i": ingredient},
    ).fetchall()


HAND = [
    # A, anastrozole 1 mg daily
    med("A", "anastrozole", D(2023, 1, 1), D(2023, 1, 30)),
    med("A", "anastrozole", D(2023, 1, 20), D(2023, 2, 18)),  # overlaps Jan 20-30 (11 days)
    med("A", "anastrozole", D(2023, 3, 21), D(2023, 4, 19)),  # gap Feb 19 – Mar 20 = 30: merged
    med("A", "anastrozole", D(2023, 5, 21), D(2023, 6, 19)),  # gap Apr 20 – May 20 = 31: new
    # A, testosterone 100 mg every 14 days, with a record inside another
    med("A", "testosterone", D(2023, 1, 1), D(2023, 3, 31), 100.0, 1 / 14),
    med("A", "testosterone", D(2023, 2, 1), D(2023, 2, 10), 100.0, 1 / 14),
    # C: adjacent records (gap 0) and one without dose
    med("C", "anastrozole", D(2023, 1, 1), D(2023, 1, 10)),
    med("C", "anastrozole", D(2023, 1, 11), D(2023, 1, 20), None, 1.0),
    # uncatalogued drug: no ingredient, no episode
    med("C", None, D(2023, 1, 1), D(2023, 12, 31)),
    # D: a year-long order and two dispenses: the dispenses decide (gap Jan 31 – Mar 31 = 60)
    med("D", "anastrozole", D(2023, 1, 1), D(2023, 12, 31), record_type="order"),
    med("D", "anastrozole", D(2023, 1, 1), D(2023, 1, 30), record_type="dispense"),
    med("D", "anastrozole", D(2023, 4, 1), D(2023, 4, 30), record_type="dispense"),
    # E: orders only: the orders are the best evidence there is
    med("E", "testosterone", D(2023, 1, 1), D(2023, 6, 29), 200.0, 1 / 14, "order"),
]


@pytest.fixture
def con(tmp_path):
    c = duckdb.connect(str(tmp_path / "wh.duckdb"))
    load(c, fct(HAND))
    materialize(c, "core.medication_exposure", PARAMS)
    yield c
    c.close()


def test_overlap_and_gap_of_exactly_30_merged_31_not(con):
    # episode 1: Jan 1 – Apr 19; covered Jan 1 – Feb 18 (49 days) + Mar 21 – Apr 19 (30)
    # dose: 3 records × 30 days × 1 mg = 90 mg
    assert episodes(con, "A", "anastrozole") == [
        (D(2023, 1, 1), D(2023, 4, 19), 79, 90.0, 3),
        (D(2023, 5, 21), D(2023, 6, 19), 30, 30.0, 1),
    ]
    length = con.execute(
        "SELECT list(episode_length_days ORDER BY episode_start) FROM core.medication_exposure "
        "WHERE patient_key = 'A' AND ingredient = 'anastrozole'"
    ).fetchone()[0]
    assert length == [109, 30]  # 31 + 28 + 31 + 19


def test_contained_record_counted_once_in_days_but_dose_per_record(con):
    ((start, end, days, dose, n),) = episodes(con, "A", "testosterone")
    assert (start, end, days, n) == (D(2023, 1, 1), D(2023, 3, 31), 90, 2)
    # 100 mg × 1/14 per day × (90 + 10) record days
    assert dose == pytest.approx(100 * (90 + 10) / 14, rel=1e-12)


def test_adjacent_records_and_unknown_dose(con):
    assert episodes(con, "C", "anastrozole") == [(D(2023, 1, 1), D(2023, 1, 20), 20, None, 2)]
    n_null = con.execute(
        "SELECT count(*) FROM core.medication_exposure WHERE ingredient IS NULL"
    ).fetchone()[0]
    assert n_null == 0


def test_dispenses_win_over_orders_orders_alone_count(con):
    assert episodes(con, "D", "anastrozole") == [
        (D(2023, 1, 1), D(2023, 1, 30), 30, 30.0, 1),
        (D(2023, 4, 1), D(2023, 4, 30), 30, 30.0, 1),
    ]
    # Jan 1 – Jun 29 = 31 + 28 + 31 + 30 + 31 + 29 = 180 days; 200 mg / 14 days × 180
    ((start, end, days, dose, n),) = episodes(con, "E", "testosterone")
    assert (start, end, days, n) == (D(2023, 1, 1), D(2023, 6, 29), 180, 1)
    assert dose == pytest.approx(200 * 180 / 14, rel=1e-12)


def test_window_parameter_is_bound(tmp_path):
    c = duckdb.connect(str(tmp_path / "w.duckdb"))
    load(c, fct(HAND))
    materialize(c, "core.medication_exposure", {"persistence_window_days": 29})
    # with 29 the 30-day gap splits episode 1
    assert [e[:2] for e in episodes(c, "A", "anastrozole")] == [
        (D(2023, 1, 1), D(2023, 2, 18)),
        (D(2023, 3, 21), D(2023, 4, 19)),
        (D(2023, 5, 21), D(2023, 6, 19)),
    ]


def test_end_date_from_days_supply_through_the_parser(tmp_path):
    csv = (
        "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
        "frequency,start_date,end_date,days_supply,quantity\n"
        "B1,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-01-01,,30,30\n"
        # ends Jan 30; next starts Mar 2: gap Jan 31 – Mar 1 = 30 days → merged
        "B1,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-03-02,,30,30\n"
        # ends Mar 31; next starts May 2: gap Apr 1 – May 1 = 31 days → new episode
        "B1,NORTH_CLINIC,dispense,199224,anastrozole,1,tablet,daily,2023-05-02,,30,30\n"
        # end_date as sent (10 days) wins over days_supply 30
        "B1,NORTH_CLINIC,dispense,199224,anastrozole,2,tablet,daily,2023-08-01,2023-08-10,30,30\n"
    )
    res = parse_meds_csv(csv.encode(), file_sha256="s", pseudonymize=lambda ns, i: f"{ns}|{i}")
    assert res.rejects == []
    c = duckdb.connect(str(tmp_path / "b.duckdb"))
    load(c, res.rows)
    materialize(c, "core.medication_exposure", PARAMS)
    assert episodes(c, "NORTH_CLINIC|B1", "anastrozole") == [
        (D(2023, 1, 1), D(2023, 3, 31), 60, 60.0, 2),
        (D(2023, 5, 2), D(2023, 5, 31), 30, 30.0, 1),
        (D(2023, 8, 1), D(2023, 8, 10), 10, 20.0, 1),  # 2 tablets × 1 mg × 10 days
    ]


def test_incremental_refresh_of_touched_patients(con):
    before_c = episodes(con, "C", "anastrozole")
    load(con, fct([*HAND, med("A", "anastrozole", D(2023, 6, 20), D(2023, 7, 19))]))
    # a stale row for C must survive: only A is recomputed
    con.execute("UPDATE core.medication_exposure SET n_records = 99 WHERE patient_key = 'C'")
    materialize(con, "core.medication_exposure", PARAMS, patient_keys=["A"])
    assert episodes(con, "A", "anastrozole")[-1] == (
        D(2023, 5, 21),
        D(2023, 7, 19),
        60,
        60.0,
        2,
    )
    assert episodes(con, "C", "anastrozole") == [(*before_c[0][:4], 99)]


# --- property: the SQL agrees with a day-by-day reference ------------------------------------


def reference(records: list[tuple[dt.date, dt.date]], window: int) -> list[tuple]:
    """Plain drug-era reference: (start, end, days_exposed, n_records) per episode."""
    out: list[list] = []
    for start, end in sorted(records):
        if out and (start - out[-1][1]).days - 1 <= window:
            ep = out[-1]
            ep[1] = max(ep[1], end)
            ep[2].update(start + dt.timedelta(k) for k in range((end - start).days + 1))
            ep[3] += 1
        else:
            days = {start + dt.timedelta(k) for k in range((end - start).days + 1)}
            out.append([start, end, days, 1])
    return [(s, e, len(days), n) for s, e, days, n in out]


spans = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 40)), min_size=1, max_size=8).map(
    lambda xs: [
        (D(2023, 1, 1) + dt.timedelta(a), D(2023, 1, 1) + dt.timedelta(a + n)) for a, n in xs
    ]
)


_MEMORY = duckdb.connect()  # one in-memory database for all examples (no warehouse file)


@settings(max_examples=40, deadline=None)
@given(records=spans, window=st.integers(0, 40))
def test_matches_day_by_day_reference(records, window):
    load(_MEMORY, fct([med("P", "anastrozole", s, e) for s, e in records]))
    materialize(_MEMORY, "core.medication_exposure", {"persistence_window_days": window})
    got = _MEMORY.execute(
        "SELECT episode_start, episode_end, days_exposed, n_records FROM core.medication_exposure "
        "ORDER BY episode_start"
    ).fetchall()
    assert got == reference(records, window)


def test_an_open_ended_placeholder_end_is_not_an_exposure_to_9999(tmp_path):
    # finding: end 9999-12-31 with days supply 30 made an episode to 9999 (2,913,904 days);
    # the days supply decides: 2022-01-01 … 2022-01-30, 30 days × 1 mg
    csv = (
        "patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
        "frequency,start_date,end_date,days_supply,quantity\n"
        "P1,NORTH_CLINIC,dispense,199224,anastrozole,1,mg,daily,2022-01-01,9999-12-31,30,30\n"
    )
    res = parse_meds_csv(csv.encode(), file_sha256="s", pseudonymize=lambda ns, i: f"{ns}|{i}")
    c = duckdb.connect(str(tmp_path / "p.duckdb"))
    load(c, res.rows)
    materialize(c, "core.medication_exposure", PARAMS)
    assert episodes(c, "NORTH_CLINIC|P1", "anastrozole") == [
        (D(2022, 1, 1), D(2022, 1, 30), 30, 30.0, 1)
    ]
