"""How each laboratory sends each analyte, and the observations written (for the truth)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from transforms.catalog import Catalog, unit_key


@dataclass(frozen=True)
class Send:
    """One way of sending an analyte: code, text, LOINC, unit, decimals, detection limit."""

    code: str
    text: str
    loinc: str | None  # None: not catalogued (loads unmapped)
    unit: str
    decimals: int
    lod: float | None = None  # detection limit in `unit`; lower values go out as `<lod`
    ref: str = ""
    method: str = ""


# analyte -> list of ways; writers pick by the draw's `variant`.
HL7_SENDS = {
    "estradiol": Send("E2", "Estradiol", "2243-4", "pg/mL", 1, 5.0, "10-40", "LC-MS/MS"),
    "estradiol_molar": Send("E2M", "Estradiol molar", "14715-7", "pmol/L", 1, 18.4, "37-147"),
    "testosterone_total": Send("TT", "Testosterone total", "2986-8", "ng/dL", 0, None, "264-916"),
    "shbg": Send("SHBG", "Sex hormone binding globulin", "13967-5", "nmol/L", 1, None, "10-57"),
    "ctx": Send("CTX", "C-telopeptide", "41171-0", "pg/mL", 0, None, "60-700"),
    "p1np": Send("P1NP", "Procollagen 1 N-propeptide", "77370-5", "ng/mL", 1, None, "20-77"),
    "psa": Send("PSA", "PSA total", "2857-1", "ng/mL", 2, None, "0-4"),
}
NORTH_SENDS = {
    "estradiol": Send("E2SENS", "Estradiol, sensitive", "2243-4", "pg/mL", 1, 3.0, "8-35", "LC-MS/MS"),
    "estradiol_ia": Send("E2IA", "Estradiol (immunoassay)", "83096-8", "pg/mL", 0, 24.0, "<39", "immunoassay"),
    "testosterone_total": Send("TESTO", "Testosterone, total", "2986-8", "ng/dL", 0, None, "264-916"),
    "shbg": Send("SHBG", "SHBG", "13967-5", "nmol/L", 1, None, "10-57"),
    "ctx": Send("CTX", "CTX (beta-CrossLaps)", "41171-0", "pg/mL", 0, None, "60-700"),
    "p1np": Send("P1NP", "P1NP, total", "77370-5", "ng/mL", 1, None, "20-77"),
    "psa": Send("PSA", "PSA", None, "ng/mL", 2, None, "0-4"),
}  # fmt: skip
SOUTH_SENDS = {
    "estradiol": Send("E2", "Östradiol", "14715-7", "pmol/L", 1, 37.0, "40-160"),
    "estradiol_mass": Send("E2", "Östradiol", "14715-7", "pg/mL", 1, 10.0, "11-44"),
    "testosterone_total": Send("TESTO", "Testosteron gesamt", "2986-8", "nmol/L", 2, None, "9,2-31,8"),
    "shbg": Send("SHBG", "SHBG", "13967-5", "nmol/L", 1, None, "10-57"),
    "ctx": Send("CTX", "Beta-CrossLaps (CTX)", "41171-0", "ng/L", 0, None, "60-700"),
    "p1np": Send("P1NP", "P1NP gesamt", "77370-5", "ug/L", 1, None, "20-77"),
    "psa": Send("PSA", "PSA gesamt", None, "ng/mL", 2, None, "0-4"),
}  # fmt: skip

ANALYTE_OF_LOINC = {
    "2243-4": "estradiol",
    "14715-7": "estradiol",
    "83096-8": "estradiol",
    "72873-3": "estradiol",
    "2986-8": "testosterone_total",
    "13967-5": "shbg",
    "41171-0": "ctx",
    "77370-5": "p1np",
}
E2_LOINCS = ("2243-4", "14715-7", "72873-3", "83096-8")


@dataclass
class LabObs:
    """One result record as written to a feed (bad records excluded)."""

    mrn: str
    collected_at: dt.datetime
    loinc: str | None
    analyte: str
    value: float | None  # canonical unit (None for N/A cells)
    comparator: str | None
    unit: str | None  # canonical unit
    feed: str  # hl7 | lab_csv
    source: str  # LABWH_LIS | northlab | southlab
    order_id: str
    code: str
    status: str  # F | C | D
    version: dt.datetime  # message time (HL7) or collection time (CSV): orders versions
    sent_value: str
    sent_unit: str


def canonical_unit(catalog: Catalog, analyte: str) -> str | None:
    for a in catalog.analytes.values():
        if a.analyte == analyte:
            return a.canonical_unit
    return None


def send_value(catalog: Catalog, analyte: str, send: Send, true_value: float):
    """(number text with '.', comparator or None, canonical value) for a true canonical value.

    The canonical value is recomputed from the text as written, with the factor of
    config/units.csv, exactly as a parser reading the file would.
    """
    if send.loinc is None or send.loinc not in catalog.analytes:  # not catalogued: as sent
        text = f"{true_value:.{send.decimals}f}"
        return text, None, float(text)
    factor = catalog.factors[(analyte, unit_key(send.unit))]
    sent = true_value / factor
    text = f"{sent:.{send.decimals}f}"
    comparator = None
    if send.lod is not None and float(text) < send.lod:
        text, comparator = _lod_text(send.lod), "<"
    return text, comparator, float(text) * factor


def _lod_text(lod: float) -> str:
    return str(int(lod)) if float(lod).is_integer() else f"{lod:g}"


def current_results(obs: list[LabObs]) -> list[LabObs]:
    """Apply corrections and retractions: the latest version of each (feed, source, order,
    code) key; keys whose latest version is D or W are dropped."""
    latest: dict[tuple, LabObs] = {}
    for o in obs:
        key = (o.feed, o.source, o.order_id, o.code)
        prev = latest.get(key)
        if prev is None or o.version > prev.version:
            latest[key] = o
    out = [o for o in latest.values() if o.status not in ("D", "W")]
    out.sort(key=lambda o: (o.mrn, o.collected_at, o.feed, o.source, o.order_id, o.code))
    return out
