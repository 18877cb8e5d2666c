"""Medication orders and dispenses (landing/meds/*.csv, docs/feeds.md) and exposure supplies."""

from __future__ import annotations

import datetime as dt

from .common import (
    NAMESPACE,
    BadRecord,
    FeedOutput,
    FileRecordCount,
    bad_targets,
    csv_text,
    in_2099,
    rng_for,
)

FEED = "meds"
HEADER = ("patient_id,patient_id_system,record_type,rxnorm_code,drug_name,dose_value,dose_unit,"
          "frequency,start_date,end_date,days_supply,quantity").split(",")  # fmt: skip
ANASTROZOLE = ("199224", "anastrozole 1 MG Oral Tablet")
ARIMIDEX = ("151124", "Arimidex 1 MG Oral Tablet")
TESTOSTERONE = ("835840", "testosterone cypionate 200 MG/ML Injectable Solution")
# regimen -> (dose mg, frequency spellings, tablets per dispense, days supply)
AI_DISPENSE = {
    "0.5mg_biw": ("0.5", ("twice weekly", "BIW"), 13, 91),
    "1mg_biw": ("1", ("twice weekly", "BIW"), 26, 91),
    "1mg_daily": ("1", ("daily", "QD"), 90, 90),
}
BAD_NOTES = {
    "missing_patient_id": "empty patient id",
    "unknown_unit": "dose unit puff",
    "implausible_value": "negative dose",
    "future_date": "start in 2099",
    "unparseable_value": "impossible date",
}
BAD_KINDS = tuple(BAD_NOTES)


def _row(p, kind, drug, dose, unit, freq, start, end, days, qty) -> list[str]:
    return [p.mrn, NAMESPACE, kind, drug[0], drug[1], dose, unit, freq, start.isoformat(),
            end.isoformat() if end else "", str(days) if days else "", qty]  # fmt: skip


def _dispenses(rng, first: dt.date, last_start: dt.date, days: int, gap_rate: float):
    day = first
    while day <= last_start:
        yield day
        delay = rng.randint(35, 60) if rng.random() < gap_rate else rng.randint(-5, 8)
        day = day + dt.timedelta(days=days + delay)


def patient_records(p, seed: int):
    """(rows, supplies) where supplies = {ingredient: [(start, end inclusive)]} of dispenses."""
    rng = rng_for(seed, "meds", p.index)
    rows: list[tuple[dt.date, list[str]]] = []
    supplies: dict[str, list[tuple[dt.date, dt.date]]] = {"anastrozole": [], "testosterone": []}
    freq = rng.choice(("weekly", "QW") if p.t_frequency_days == 7 else ("every 2 weeks", "Q2W"))
    dose = str(p.t_dose_mg)
    rows.append(
        (p.start, _row(p, "order", TESTOSTERONE, dose, "mg", freq, p.start, p.end, None, ""))
    )
    t_days = max(28, 2000 * p.t_frequency_days // p.t_dose_mg)
    for day in _dispenses(rng, p.start, p.end, t_days, 0.03):
        rows.append(
            (day, _row(p, "dispense", TESTOSTERONE, dose, "mg", freq, day, None, t_days, "10"))
        )
        supplies["testosterone"].append((day, day + dt.timedelta(days=t_days - 1)))
    small_packs = rng.random() < 0.4
    for seg in p.segments:
        dose_mg, freqs, qty, days = AI_DISPENSE[seg.regimen]
        if seg.regimen == "1mg_daily" and small_packs:
            qty, days = 30, 30
        f = rng.choice(freqs)
        rows.append(
            (
                seg.start,
                _row(p, "order", ANASTROZOLE, dose_mg, "mg", f, seg.start, seg.end, None, ""),
            )
        )
        for day in _dispenses(rng, seg.start, seg.end, days, 0.06):
            drug = ARIMIDEX if rng.random() < 0.1 else ANASTROZOLE
            end = day + dt.timedelta(days=days - 1)
            if rng.random() < 0.1:  # end date instead of days supply
                rows.append(
                    (day, _row(p, "dispense", drug, dose_mg, "mg", f, day, end, None, str(qty)))
                )
            else:
                rows.append(
                    (day, _row(p, "dispense", drug, dose_mg, "mg", f, day, None, days, str(qty)))
                )
            supplies["anastrozole"].append((day, end))
    return rows, supplies


def write_meds(patients, opts, seed: int):
    out = FeedOutput(FEED)
    by_year: dict[str, list] = {}
    all_supplies = {}
    for p in patients:
        rows, supplies = patient_records(p, seed)
        all_supplies[p.mrn] = supplies
        for day, row in rows:
            by_year.setdefault(f"meds/meds_{day.year}.csv", []).append((day, row, None))
    rng = rng_for(seed, "meds-bad")
    if patients:
        for kind in BAD_KINDS:
            for p, when in bad_targets(rng, patients, opts.bad_per_kind):
                day = when.date()
                row = _row(p, "dispense", ANASTROZOLE, "1", "mg", "daily", day, None, 30, "30")
                note = BAD_NOTES[kind]
                if kind == "missing_patient_id":
                    row[0] = ""
                elif kind == "unknown_unit":
                    row[6] = "puff"
                elif kind == "implausible_value":
                    row[5] = "-1"
                elif kind == "future_date":
                    row[8] = in_2099(day).isoformat()
                else:
                    row[8] = f"{day.year}-02-31"
                mrn = "" if kind == "missing_patient_id" else p.mrn
                by_year.setdefault(f"meds/meds_{day.year}.csv", []).append(
                    (day, row, (kind, mrn, note))
                )
    for name in sorted(by_year):
        entries = sorted(by_year[name], key=lambda e: (e[0], e[1]))
        count = FileRecordCount(FEED, "", name, received=len(entries))
        for i, (_, _, info) in enumerate(entries):
            if info:
                count.add_bad(info[0])
                out.bad.append(
                    BadRecord(FEED, "", name, f"line {i + 2}", info[0], info[1], info[2])
                )
        out.files[name] = csv_text(HEADER, [e[1] for e in entries]).encode("utf-8")
        out.counts.append(count)
    out.add_duplicates(rng_for(seed, "meds-dup"), opts.bad_per_kind)
    return out, all_supplies
