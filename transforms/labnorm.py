"""Normalization shared by every lab feed: code → LOINC, catalog analyte, canonical unit.

Input: a polars frame with the ``StgLabResult`` columns the parser knows (codes as sent,
``value_num_original``, ``comparator``, ``original_unit``, optionally ``detection_limit`` in
the original unit and ``method``). Output: the same frame with ``loinc_code``, ``analyte``,
``is_mapped``, ``value``, ``unit``, ``detection_limit`` and ``method`` filled, and the rows
whose catalogued analyte has a unit without conversion split off as ``unknown_unit`` rejects.

Rules (docs/feeds.md):
- LOINC is taken from the identifier when its system is LOINC, else from the alternate
  identifier (OBX-3.4-6) when that is LOINC, else from the source's ``local_codes`` map.
- A catalogued analyte with a numeric value is converted with config/units.csv; an unknown
  unit is a reject, never a guess. With no numeric value (``N/A``, text) the unit is not
  checked and ``value`` stays NULL.
- Unmapped analytes keep the value and unit as sent (``is_mapped = false``).
- ``<L`` / ``<=L``: ``value = L`` (converted), ``detection_limit = L`` unless the source sent
  its own detection limit.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from transforms import redact
from transforms.catalog import LOINC_SYSTEMS, Catalog
from transforms.records import UNKNOWN_UNIT, Reject


def _catalog_frames(catalog: Catalog) -> tuple[pl.DataFrame, pl.DataFrame]:
    analytes = pl.DataFrame(
        {
            "loinc_code": [a.loinc_code for a in catalog.analytes.values()],
            "_analyte": [a.analyte for a in catalog.analytes.values()],
            "_canonical_unit": [a.canonical_unit for a in catalog.analytes.values()],
            "_default_method": [a.method for a in catalog.analytes.values()],
        },
        schema={
            "loinc_code": pl.String,
            "_analyte": pl.String,
            "_canonical_unit": pl.String,
            "_default_method": pl.String,
        },
    )
    factors = pl.DataFrame(
        {
            "_analyte": [k[0] for k in catalog.factors],
            "_unit_key": [k[1] for k in catalog.factors],
            "_factor": list(catalog.factors.values()),
        },
        schema={"_analyte": pl.String, "_unit_key": pl.String, "_factor": pl.Float64},
    )
    return analytes, factors


def unit_key_expr(col: str) -> pl.Expr:
    """Vectorized ``catalog.unit_key``."""
    return (
        pl.col(col)
        .fill_null("")
        .str.strip_chars()
        .str.replace_all("[µμ]", "u")
        .str.replace_all(r"\s", "")  # Unicode whitespace: a no-break space too
        .str.to_lowercase()
    )


def _is_loinc(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars().str.to_uppercase().is_in(list(LOINC_SYSTEMS))


def normalize_lab_results(
    df: pl.DataFrame,
    *,
    local_codes: Mapping[str, str],
    catalog: Catalog,
    loinc_under_any_system: bool = False,
) -> tuple[pl.DataFrame, list[Reject]]:
    """Return (accepted rows, unknown-unit rejects). Row order is preserved.

    ``loinc_under_any_system``: a code the catalog knows as a LOINC is used whatever its
    coding system says (after the local codes), for sources whose system is the config's
    assumption for a whole file (a CSV code column), not the sender's word for each code."""
    if df.height == 0:
        return df, []
    analytes, factors = _catalog_frames(catalog)
    local = pl.DataFrame(
        {"source_code": list(local_codes.keys()), "_local_loinc": list(local_codes.values())},
        schema={"source_code": pl.String, "_local_loinc": pl.String},
    )
    for name in ("detection_limit", "method"):
        if name not in df.columns:
            df = df.with_columns(
                pl.lit(None, dtype=pl.Float64 if name == "detection_limit" else pl.String).alias(
                    name
                )
            )

    # a code the catalog knows as a LOINC, sent with no coding system at all (v2.3 feeds and
    # the spec's own examples write `2243-4^Estradiol`): after the configured local codes
    no_system = pl.col("source_code_system").fill_null("").str.strip_chars() == ""
    bare_loinc = (no_system | loinc_under_any_system) & pl.col(
        "source_code"
    ).str.strip_chars().is_in(analytes["loinc_code"].implode())
    work = (
        df.with_row_index("_row")
        .join(local, on="source_code", how="left")
        .with_columns(
            pl.when(_is_loinc("source_code_system"))
            .then(pl.col("source_code").str.strip_chars())
            .when(_is_loinc("alt_code_system"))
            .then(pl.col("alt_code").str.strip_chars())
            .when(pl.col("_local_loinc").is_not_null())
            .then(pl.col("_local_loinc"))
            .when(bare_loinc)
            .then(pl.col("source_code").str.strip_chars())
            .alias("_loinc"),
            unit_key_expr("original_unit").alias("_unit_key"),
        )
        .drop("loinc_code", strict=False)
        .join(analytes, left_on="_loinc", right_on="loinc_code", how="left")
        .join(factors, on=["_analyte", "_unit_key"], how="left")
        .sort("_row")
    )
    mapped = pl.col("_analyte").is_not_null()
    has_num = pl.col("value_num_original").is_not_null()
    bad = mapped & has_num & pl.col("_factor").is_null()
    censored_low = pl.col("comparator").is_in(["<", "<="])

    factor = pl.col("_factor")
    out = work.with_columns(
        pl.when(mapped).then(pl.col("_loinc")).otherwise(None).alias("loinc_code"),
        pl.when(mapped)
        .then(pl.col("_analyte"))
        .otherwise(pl.coalesce("source_text", "alt_text", "source_code"))
        .alias("analyte"),
        mapped.alias("is_mapped"),
        pl.when(mapped)
        .then(pl.col("value_num_original") * factor)
        .otherwise(pl.col("value_num_original"))
        .alias("value"),
        pl.when(mapped)
        .then(pl.col("_canonical_unit"))
        .otherwise(pl.col("original_unit"))
        .alias("unit"),
        pl.when(mapped & pl.col("detection_limit").is_not_null())
        .then(pl.col("detection_limit") * factor)
        .when(pl.col("detection_limit").is_not_null())
        .then(pl.col("detection_limit"))
        .when(censored_low)
        .then(
            pl.when(mapped)
            .then(pl.col("value_num_original") * factor)
            .otherwise(pl.col("value_num_original"))
        )
        .otherwise(None)
        .alias("detection_limit"),
        pl.coalesce("method", "_default_method").alias("method"),
    )
    rejected = out.filter(bad)
    rejects = [
        Reject(
            position=r["position"],
            check_name=UNKNOWN_UNIT,
            reason=f"unit {redact.token(r['original_unit'])!r} has no conversion to "
            f"{r['_canonical_unit']} for {r['_analyte']} (LOINC {r['_loinc']})",
            excerpt=f"{redact.token(r['source_code'])} {redact.shown(r['original_value'])} "
            f"{redact.token(r['original_unit'])}",
            message_control_id=r.get("message_control_id"),
        )
        for r in rejected.select(
            "position",
            "original_unit",
            "_canonical_unit",
            "_analyte",
            "_loinc",
            "source_code",
            "original_value",
            "message_control_id",
        ).iter_rows(named=True)
    ]
    accepted = out.filter(~bad).select(df.columns)
    return accepted, rejects
