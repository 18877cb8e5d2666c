"""Table cells of the cohort report, with small-cell suppression (docs/cohort_report.md).

Every count below ``min_cell`` is shown as ``<min_cell`` (``<11`` by default) and every
statistic computed on fewer than ``min_cell`` patients is replaced by ``SUPPRESSED``.
Numbers use an ASCII minus so that readers (and tests) can parse them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transforms.reporting.cohort_stats import Quartiles, Summary

SUPPRESSED = "—"
MISSING = ""


@dataclass
class Table:
    key: str  # stable id (HTML id attribute): "<comparison>-<table>"
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_markdown(self) -> str:
        def line(cells):
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

        out = [line(self.columns), line(["---"] * len(self.columns))]
        out += [line(r) for r in self.rows]
        return "\n".join(out)


@dataclass(frozen=True)
class Cells:
    """Formats numbers for one report, applying the small-cell rule of ``min_cell``."""

    min_cell: int = 11

    def shown(self, n: int | None) -> bool:
        return n is not None and n >= self.min_cell

    def count(self, n: int | None) -> str:
        if n is None:
            return MISSING
        return str(int(n)) if self.shown(n) else f"<{self.min_cell}"

    @staticmethod
    def num(x: float | None, decimals: int) -> str:
        if x is None:
            return MISSING
        s = f"{x:.{decimals}f}"
        return "0" + s[2:] if s.startswith("-0") and float(s) == 0 else s

    def mean_sd(self, s: Summary, decimals: int) -> str:
        if not self.shown(s.n):
            return SUPPRESSED
        if s.sd is None:
            return self.num(s.mean, decimals)
        return f"{self.num(s.mean, decimals)} ± {self.num(s.sd, decimals)}"

    def median_iqr(self, q: Quartiles, decimals: int) -> str:
        if not self.shown(q.n):
            return SUPPRESSED
        if q.median is None:
            return MISSING
        return f"{self.num(q.median, decimals)} [{self.num(q.q1, decimals)} to {self.num(q.q3, decimals)}]"

    def value(self, x: float | None, n: int, decimals: int) -> str:
        """A statistic computed on ``n`` patients."""
        return self.num(x, decimals) if self.shown(n) else SUPPRESSED

    def ci(self, lo: float | None, hi: float | None, n: int, decimals: int) -> str:
        if not self.shown(n):
            return SUPPRESSED
        if lo is None or hi is None:
            return MISSING
        return f"{self.num(lo, decimals)} to {self.num(hi, decimals)}"

    def p(self, p: float | None, *ns: int) -> str:
        if not all(self.shown(n) for n in ns):
            return SUPPRESSED
        if p is None:
            return MISSING
        return f"{p:.2e}" if p < 0.001 else f"{p:.3f}"


def feature_parameters(params_by_model: dict[str, dict]) -> str:
    """The parameters the feature marts were built with, as one line of the report's header
    (``raw.feature_state``: mart → its ``params``)."""
    e2 = params_by_model.get("marts.feat_e2_exposure", {})
    bmd = params_by_model.get("marts.feat_bmd_trend", {})
    parts = []
    if e2:
        thresholds = ", ".join(f"{t:g}" for t in e2.get("thresholds_pg_ml", []))
        parts.append(
            f"E2 thresholds {thresholds} pg/mL, max gap {e2.get('max_gap_days')} days, "
            f"<L as L × {e2.get('censored_fraction')}"
        )
    if bmd:
        lsc = ", ".join(
            f"{site} {value:g}"
            for site, value in zip(bmd.get("bmd_sites", []), bmd.get("lsc_g_cm2", []), strict=True)
        )
        parts.append(f"BMD min span {bmd.get('min_span_years')} years, LSC g/cm² {lsc}")
    return "; ".join(parts) or "not recorded"
