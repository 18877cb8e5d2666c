"""The cohort model: men on testosterone cypionate, some on anastrozole, followed 1-6 years.

Produces per patient the anastrozole regimen, the blood draws with the *true* analyte values
(canonical units) and the DXA visits with *measured* BMD per scanner. Feed writers decide
how each value is sent; the truth is computed from what they wrote.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass, field

from .common import FAMILY_NAMES, GIVEN_NAMES, lognormal, mrn_of, rng_for
from .options import Options
from .reference import bmd_from_sbmd

# Anastrozole regimens: weekly dose in mg (1 mg tablets; 0.5 mg = half a tablet).
REGIMENS = {
    "none": 0.0,
    "0.5mg_biw": 1.0,
    "1mg_biw": 2.0,
    "1mg_daily": 7.0,
}
ARM_WEIGHTS = (("none", 0.35), ("0.5mg_biw", 0.2), ("1mg_biw", 0.25), ("1mg_daily", 0.2))
LOW_E2_PG_ML = 20.0  # below this expected E2 the bone loses (model, not a feature parameter)


@dataclass(frozen=True)
class Scanner:
    manufacturer: str  # `Hologic` or `GE Lunar`
    model: str
    serial: str
    software: str


SCANNERS = {
    "Hologic": (
        Scanner("Hologic", "Horizon A", "301245", "13.6.0.5"),
        Scanner("Hologic", "Discovery W", "87654", "13.4.2.3"),
    ),
    "GE Lunar": (
        Scanner("GE Lunar", "Prodigy Advance", "PA301122", "13.60.033"),
        Scanner("GE Lunar", "iDXA", "ID200455", "16.10.151"),
    ),
}


@dataclass(frozen=True)
class Segment:
    start: dt.date
    end: dt.date  # inclusive
    regimen: str


@dataclass
class Draw:
    collected_at: dt.datetime  # facility local, naive
    lab: str  # hl7 | northlab | southlab
    values: dict[str, float]  # analyte -> true value in canonical unit
    variant: float  # uniform draw used by writers to pick codes/units


@dataclass
class Region:
    bmd: float
    area: float
    t_score: float
    z_score: float


@dataclass
class DxaVisit:
    date: dt.date
    scanner: Scanner
    spine: dict[str, Region]  # L1 … L4, L1-L4, L2-L4
    hips: dict[str, dict[str, Region]]  # side -> {neck, total, troch, inter, wards}
    weight_lbs: float
    height_in: float


@dataclass
class Patient:
    index: int
    mrn: str
    given: str
    family: str
    birth_date: dt.date
    start: dt.date
    end: dt.date
    arm: str
    segments: list[Segment]
    e2_base: float
    t_base: float
    primary_lab: str
    northlab_assay: str  # sens | ia
    draws: list[Draw] = field(default_factory=list)
    visits: list[DxaVisit] = field(default_factory=list)
    t_dose_mg: int = 100
    t_frequency_days: int = 7
    low_e2_years: float = 0.0
    spine_rate_pct: tuple[float, float] = (0.0, 0.0)  # (E2 adequate, E2 low) %/yr


def _choice_weighted(rng: random.Random, pairs) -> str:
    r = rng.random()
    acc = 0.0
    for name, w in pairs:
        acc += w
        if r < acc:
            return name
    return pairs[-1][0]


def suppression(regimen: str) -> float:
    """Fraction of E2 left under an anastrozole regimen (1 for none)."""
    return 1.0 - 0.8 * (1.0 - math.exp(-REGIMENS[regimen] / 2.0))


def regimen_on(p: Patient, day: dt.date) -> str:
    for s in p.segments:
        if s.start <= day <= s.end:
            return s.regimen
    return "none"


def _segments(rng: random.Random, arm: str, start: dt.date, end: dt.date) -> list[Segment]:
    n = (end - start).days
    if arm == "none":
        if rng.random() < 0.15 and n > 400:  # starts anastrozole during follow-up
            a = start + dt.timedelta(days=rng.randint(120, n - 200))
            return [Segment(a, end, rng.choice(("0.5mg_biw", "1mg_biw")))]
        return []
    a, b = start, end
    if rng.random() < 0.3 and n > 400:
        a = start + dt.timedelta(days=rng.randint(90, min(540, n - 200)))
    if rng.random() < 0.25 and (end - a).days > 300:
        b = a + dt.timedelta(days=rng.randint(150, (end - a).days - 100))
    if rng.random() < 0.15 and (b - a).days > 300:  # dose change mid-way
        mid = a + dt.timedelta(days=rng.randint(120, (b - a).days - 120))
        other = rng.choice([r for r in REGIMENS if r not in ("none", arm)])
        return [Segment(a, mid - dt.timedelta(days=1), arm), Segment(mid, b, other)]
    return [Segment(a, b, arm)]


def _timeline(p: Patient) -> list[Segment]:
    """The regimen on every day of follow-up, gaps between segments filled with `none`."""
    pieces, day = [], p.start
    for s in sorted(p.segments, key=lambda x: x.start):
        if s.start > day:
            pieces.append(Segment(day, s.start - dt.timedelta(days=1), "none"))
        pieces.append(s)
        day = s.end + dt.timedelta(days=1)
    if day <= p.end:
        pieces.append(Segment(day, p.end, "none"))
    return pieces


def _low_years_until(p: Patient, day: dt.date) -> float:
    """Years from follow-up start to ``day`` during which expected E2 is below LOW_E2_PG_ML."""
    total = 0
    for s in _timeline(p):
        if p.e2_base * suppression(s.regimen) >= LOW_E2_PG_ML:
            continue
        a, b = max(s.start, p.start), min(s.end, day)
        if b >= a:
            total += (b - a).days + 1
    return total / 365.25


def _draw_dates(rng: random.Random, start: dt.date, end: dt.date) -> list[dt.date]:
    dates = [start]
    d = start
    while True:
        r = rng.random()
        if r < 0.04:
            step = rng.randint(181, 300)  # a gap
        elif r < 0.07:
            step = rng.choice((180, 181))  # the edge of max_gap_days
        else:
            step = rng.randint(60, 180)
        d = d + dt.timedelta(days=step)
        if d > end:
            return dates
        dates.append(d)


def _lab_for_draw(rng: random.Random, primary: str) -> str:
    if rng.random() < 0.85:
        return primary
    return rng.choice([x for x in ("hl7", "northlab", "southlab") if x != primary])


def _draw_values(rng: random.Random, p: Patient, day: dt.date, bases: dict) -> dict[str, float]:
    t = p.t_base * rng.lognormvariate(0.0, 0.22)
    e2 = p.e2_base * (t / p.t_base) ** 0.7 * suppression(regimen_on(p, day))
    e2 *= rng.lognormvariate(0.0, 0.18)
    values = {"estradiol": e2, "testosterone_total": t}
    if rng.random() < 0.6:
        values["shbg"] = bases["shbg"] * rng.lognormvariate(0.0, 0.1)
    if rng.random() < 0.25:
        values["ctx"] = bases["ctx"] * (1.4 if e2 < 15 else 1.0) * rng.lognormvariate(0.0, 0.2)
        values["p1np"] = bases["p1np"] * rng.lognormvariate(0.0, 0.2)
    if rng.random() < 0.15:
        values["psa"] = bases["psa"] * rng.lognormvariate(0.0, 0.15)  # not catalogued
    return values


# Reference populations for T-scores (young adult mean, SD) and the age slope of Z − T.
T_REF = {
    ("Hologic", "spine"): (1.047, 0.110),
    ("Hologic", "total"): (1.029, 0.130),
    ("Hologic", "neck"): (0.934, 0.137),
    ("GE Lunar", "spine"): (1.200, 0.110),
    ("GE Lunar", "total"): (1.080, 0.145),
    ("GE Lunar", "neck"): (1.050, 0.140),
}
PRECISION_G_CM2 = {"spine": 0.010, "total": 0.009, "neck": 0.012}  # ISCD-typical RMS-SD


def region(bmd: float, area: float, manufacturer: str, kind: str, age: float) -> Region:
    ym, sd = T_REF[(manufacturer, kind)]
    t = (bmd - ym) / sd
    return Region(bmd, area, t, t + 0.02 * (age - 30.0))


def _dxa_visits(rng: random.Random, p: Patient, opts: Options) -> list[DxaVisit]:
    dates = [p.start + dt.timedelta(days=rng.randint(0, 90))]
    while True:
        nxt = dates[-1] + dt.timedelta(days=rng.randint(365, 730))
        if nxt > p.end:
            break
        dates.append(nxt)
    if len(dates) == 1 and rng.random() < 0.3:
        nxt = dates[0] + dt.timedelta(days=rng.randint(200, 364))
        if nxt <= p.end:
            dates.append(nxt)  # a short repeat: span below the minimum
    vendor = "Hologic" if rng.random() < 0.6 else "GE Lunar"
    model_ix = rng.randrange(2)
    switch_at = None
    if len(dates) >= 3 and rng.random() < opts.vendor_switch_rate:
        switch_at = rng.randint(1, len(dates) - 1)
    # Underlying standardized BMD (sBMD / 1000, g/cm²) and its rates (%/yr, adequate / low E2).
    s_spine = min(1.5, max(0.75, rng.gauss(1.10, 0.13)))
    s_total = min(1.35, max(0.65, rng.gauss(1.00, 0.12)))
    s_neck = min(1.25, max(0.55, rng.gauss(0.88, 0.11)))
    side_off = {"left": rng.gauss(0.0, 0.012), "right": rng.gauss(0.0, 0.012)}
    rates = {
        "spine": (rng.uniform(-0.2, 0.8), rng.uniform(-2.0, -1.0)),
        "total": (rng.uniform(-0.2, 0.4), rng.uniform(-1.2, -0.5)),
        "neck": (rng.uniform(-0.3, 0.3), rng.uniform(-1.4, -0.6)),
    }
    p.spine_rate_pct = rates["spine"]
    ratios = [0.93 + rng.gauss(0, 0.015), 0.98, 1.01, 1.02]
    areas = [a * rng.uniform(0.9, 1.1) for a in (14.5, 15.5, 16.8, 18.2)]
    norm = sum(areas[i] * ratios[i] for i in (1, 2, 3)) / sum(areas[1:])
    ratios = [ratios[0]] + [r / norm for r in ratios[1:]]
    weight = rng.uniform(160, 240)
    height = rng.uniform(64, 75)
    one_side = rng.random() < 0.08  # one hip only at some visits (prosthesis on the other)
    visits = []
    for i, d in enumerate(dates):
        v = vendor if switch_at is None or i < switch_at else _other(vendor)
        scanner = SCANNERS[v][model_ix]
        years = (d - p.start).days / 365.25
        low = _low_years_until(p, d)

        def trend(s0: float, kind: str, years=years, low=low) -> float:
            hi_rate, lo_rate = rates[kind]
            return s0 * (1.0 + (hi_rate * (years - low) + lo_rate * low) / 100.0)

        age = (d - p.birth_date).days / 365.25
        l24 = bmd_from_sbmd("lumbar_spine", v, trend(s_spine, "spine"))
        l24 += rng.gauss(0.0, PRECISION_G_CM2["spine"])
        vert_bmd = [l24 * r * (1.0 + rng.gauss(0.0, 0.004)) for r in ratios]
        vert_area = [a * (1.0 + rng.gauss(0.0, 0.01)) for a in areas]
        spine = {f"L{i + 1}": region(vert_bmd[i], vert_area[i], v, "spine", age) for i in range(4)}
        for name, ix in (("L1-L4", (0, 1, 2, 3)), ("L2-L4", (1, 2, 3))):
            area = sum(vert_area[j] for j in ix)
            bmd = sum(vert_bmd[j] * vert_area[j] for j in ix) / area
            spine[name] = region(bmd, area, v, "spine", age)
        hips = {}
        sides = ("left", "right")
        if one_side and i % 2 == 1:
            sides = ("left",)
        for side in sides:
            tot = bmd_from_sbmd("total_hip", v, trend(s_total, "total") + side_off[side])
            tot += rng.gauss(0.0, PRECISION_G_CM2["total"])
            neck = bmd_from_sbmd("femoral_neck", v, trend(s_neck, "neck") + side_off[side])
            neck += rng.gauss(0.0, PRECISION_G_CM2["neck"])
            hips[side] = {
                "neck": region(neck, rng.uniform(4.8, 5.6), v, "neck", age),
                "total": region(tot, rng.uniform(34.0, 42.0), v, "total", age),
                "troch": region(tot * rng.uniform(0.78, 0.86), rng.uniform(11, 15), v, "total", age),
                "inter": region(tot * rng.uniform(1.1, 1.16), rng.uniform(19, 24), v, "total", age),
                "wards": region(neck * rng.uniform(0.72, 0.8), rng.uniform(1.0, 1.3), v, "neck", age),
                "upper_neck": region(neck * rng.uniform(0.8, 0.88), rng.uniform(1.6, 2.0), v, "neck", age),
                "shaft": region(tot * rng.uniform(1.15, 1.25), rng.uniform(8.0, 10.0), v, "total", age),
            }  # fmt: skip
        visits.append(DxaVisit(d, scanner, spine, hips, weight + rng.gauss(0, 2.0), height))
    return visits


def _other(vendor: str) -> str:
    return "GE Lunar" if vendor == "Hologic" else "Hologic"


def build_cohort(patients: int, seed: int, opts: Options) -> list[Patient]:
    out = []
    span_days = (opts.end_date - opts.start_date).days
    hl7_w, north_w, _ = opts.feed_mix
    for i in range(patients):
        rng = rng_for(seed, "patient", i)
        birth = dt.date(1945, 1, 1) + dt.timedelta(days=rng.randint(0, 11322))  # … 1975-12-31
        dur = rng.randint(365, 6 * 365)
        if dur > span_days:
            dur = span_days
        start = opts.start_date + dt.timedelta(days=rng.randint(0, span_days - dur))
        end = start + dt.timedelta(days=dur)
        arm = _choice_weighted(rng, ARM_WEIGHTS)
        r = rng.random()
        primary = "hl7" if r < hl7_w else ("northlab" if r < hl7_w + north_w else "southlab")
        p = Patient(
            index=i,
            mrn=mrn_of(i),
            given=rng.choice(GIVEN_NAMES),
            family=rng.choice(FAMILY_NAMES),
            birth_date=birth,
            start=start,
            end=end,
            arm=arm,
            segments=_segments(rng, arm, start, end),
            e2_base=lognormal(rng, 36.0, 0.3),
            t_base=lognormal(rng, 650.0, 0.2),
            primary_lab=primary,
            northlab_assay="ia" if rng.random() < 0.35 else "sens",
            t_dose_mg=rng.choice((100, 140, 200)),
        )
        p.t_frequency_days = 14 if p.t_dose_mg == 200 else 7
        bases = {
            "shbg": lognormal(rng, 30.0, 0.3),
            "ctx": lognormal(rng, 350.0, 0.25),
            "p1np": lognormal(rng, 50.0, 0.25),
            "psa": lognormal(rng, 1.2, 0.5),
        }
        for d in _draw_dates(rng, start, end):
            n_same_day = 2 if rng.random() < 0.03 else 1
            for _ in range(n_same_day):
                when = dt.datetime.combine(d, dt.time(rng.randint(7, 11), rng.randrange(0, 60, 5)))
                lab = _lab_for_draw(rng, primary)
                p.draws.append(Draw(when, lab, _draw_values(rng, p, d, bases), rng.random()))
        p.draws.sort(key=lambda x: (x.collected_at, x.lab))
        p.low_e2_years = _low_years_until(p, end)
        p.visits = _dxa_visits(rng, p, opts)
        out.append(p)
    return out
