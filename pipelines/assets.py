"""Assets, one per warehouse layer step: landing → raw → staged → core → marts → published.

Thin wiring only: each asset calls one step of ``warehouse.steps`` and reports its counts
as materialization metadata. Asset keys are ``[schema, table]`` so the graph in the UI reads
like the warehouse.
"""

import time

import dagster as dg

from pipelines import reports
from pipelines.resources import WarehouseResource
from transforms.landing import FEEDS
from warehouse import params, steps
from warehouse.publish import publish_run
from warehouse.runner import MODELS_DIR

RAW = dg.AssetKey(["raw", "files"])
STAGED = {
    "hl7": dg.AssetKey(["staging", "stg_hl7__lab_result"]),
    "lab_csv": dg.AssetKey(["staging", "stg_lab_csv__lab_result"]),
    "dexa": dg.AssetKey(["staging", "stg_dexa__scan"]),
    "meds": dg.AssetKey(["staging", "stg_meds__medication"]),
}
CORE_KEYS = [dg.AssetKey(name.split(".")) for name in steps.CORE_MODELS]
FEATURE_KEYS = [dg.AssetKey(name.split(".")) for name in steps.FEATURE_MODELS]
OMOP = dg.AssetKey(["omop", "views"])
PUBLISHED = dg.AssetKey(["published", "analytics"])


class FeatureConfig(dg.Config):
    """Run configuration of the feature marts (defaults from config/features.yaml)."""

    thresholds_pg_ml: list[float] | None = None
    max_gap_days: int | None = None
    censored_fraction: float | None = None
    min_span_years: float | None = None
    full_rebuild: bool = False

    def overrides(self) -> dict:
        return {k: v for k, v in self.model_dump().items() if v is not None and k != "full_rebuild"}


def run_feature_config(run_config: dict) -> FeatureConfig:
    """The ``feature_marts`` config of a run's run config (defaults when it has none)."""
    raw = ((run_config or {}).get("ops") or {}).get("feature_marts") or {}
    return FeatureConfig(**(raw.get("config") or {}))


def describe(key: dg.AssetKey) -> str:
    """The table's description from its SQL model's header comment."""
    path = MODELS_DIR / key.path[0] / f"{key.path[1]}.sql"
    if not path.exists():
        return ""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("--"):
            break
        lines.append(line[2:].strip())
    return " ".join(lines)


def _table_results(keys, counts: dict[str, int], t0: float):
    """One materialization per table a multi-asset built (rows, shared duration)."""
    seconds = round(time.perf_counter() - t0, 2)
    for key in keys:
        yield dg.MaterializeResult(
            asset_key=key, metadata={"rows": counts[".".join(key.path)], "duration_s": seconds}
        )


def _summary_metadata(summary: steps.FeedSummary, seconds: float) -> dict:
    return {
        "files": summary.files,
        "records_received": summary.received,
        "records_accepted": summary.accepted,
        "records_quarantined": summary.quarantined,
        "quarantined_by_check": dg.MetadataValue.json(summary.by_check),
        "duration_s": round(seconds, 2),
    }


def succeeded_in(instance: dg.DagsterInstance):
    """Whether Dagster saw a run (of raw.runs) succeed; ids it does not know did not."""

    def succeeded(run_id: str) -> bool:
        run = instance.get_run_by_id(run_id)
        return run is not None and run.status == dg.DagsterRunStatus.SUCCESS

    return succeeded


@dg.asset(
    key=RAW,
    group_name="raw",
    description="Every received landing file once, by content hash; bytes archived.",
)
def raw_files(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    t0 = time.perf_counter()
    # the feature parameters of this run (config/features.yaml + its run config) are checked
    # before anything lands, not at the marts step after landing, staging and core
    params.feature_params(run_feature_config(context.run.run_config).overrides())
    home = warehouse.get_home()
    steps.start_run(
        home, context.run_id, warehouse.landing_dir(), succeeded=succeeded_in(context.instance)
    )
    summaries = steps.land(home, warehouse.landing_dir(), context.run_id)
    dup = {f: s.quarantined for f, s in summaries.items() if s.quarantined}
    return dg.MaterializeResult(
        metadata={
            "duplicate_deliveries": dg.MetadataValue.json(dup),
            "duration_s": round(time.perf_counter() - t0, 2),
        }
    )


def _staged_asset(feed: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=STAGED[feed],
        deps=[RAW],
        group_name="staging",
        name=None,
        description=f"Parsed, normalized and validated {feed} records; failures to quality.quarantine.",
        retry_policy=dg.RetryPolicy(max_retries=2, delay=1, backoff=dg.Backoff.EXPONENTIAL),
    )
    def _asset(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        t0 = time.perf_counter()
        summary = steps.stage(warehouse.get_home(), feed, context.run_id, log=context.log.info)
        return dg.MaterializeResult(metadata=_summary_metadata(summary, time.perf_counter() - t0))

    return _asset


staged_assets = [_staged_asset(feed) for feed in FEEDS]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key, deps=list(STAGED.values()), group_name="core", description=describe(key))
        for key in CORE_KEYS
    ],
)
def core_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    """Staged → core: a deterministic rebuild of every core table (one transaction)."""
    t0 = time.perf_counter()
    counts = steps.build_core(warehouse.get_home(), params.core_params(), context.run_id)
    yield from _table_results(CORE_KEYS, counts, t0)


@dg.multi_asset(
    specs=[
        dg.AssetSpec(key, deps=CORE_KEYS, group_name="marts", description=describe(key))
        for key in FEATURE_KEYS
    ],
)
def feature_marts(
    context: dg.AssetExecutionContext, config: FeatureConfig, warehouse: WarehouseResource
):
    """Core → marts, recomputed for the patients this run touched (full when parameters change)."""
    t0 = time.perf_counter()
    p = params.feature_params(config.overrides())
    counts = steps.build_features(warehouse.get_home(), p, context.run_id, full=config.full_rebuild)
    yield from _table_results(FEATURE_KEYS, counts, t0)


@dg.asset(key=OMOP, deps=CORE_KEYS, group_name="omop", description="OMOP CDM v5.4 views over core.")
def omop_views(warehouse: WarehouseResource) -> dg.MaterializeResult:
    names = steps.build_omop(warehouse.get_home())
    return dg.MaterializeResult(metadata={"views": ", ".join(names)})


QUALITY_GX = dg.AssetKey(["quality", "gx_validation"])


@dg.asset(
    key=QUALITY_GX,
    deps=[*FEATURE_KEYS, OMOP],
    group_name="quality",
    description="Great Expectations suites over the warehouse: quality.gx_results, Data Docs. "
    "Before publishing, so the snapshot carries the run's own results.",
)
def gx_validation(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    summary = reports.gx(warehouse.get_home(), context.run_id)
    return dg.MaterializeResult(
        metadata={
            "gx_success": bool(summary.get("success")),
            "gx_failed_expectations": summary.get("n_failed", 0),
            "data_docs": dg.MetadataValue.path(summary["data_docs"]),
        }
    )


@dg.asset(
    key=PUBLISHED,
    deps=[*FEATURE_KEYS, OMOP, QUALITY_GX],
    group_name="published",
    description="Read-only analyst snapshot published/analytics.duckdb, swapped atomically.",
)
def published_analytics(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    home = warehouse.get_home()
    path = publish_run(home, context.run_id)
    return dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(path))})


QUALITY_REPORT = dg.AssetKey(["reports", "quality_report"])
COHORT_REPORT = dg.AssetKey(["reports", "cohort_report"])


@dg.asset(
    key=QUALITY_REPORT,
    deps=[PUBLISHED, QUALITY_GX],
    group_name="reports",
    description="The quality report HTML of the run, with its Great Expectations results.",
)
def quality_report(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    home = warehouse.get_home()
    summary = reports.quality(home, context.run_id, gx_again=False)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(summary["html_path"]),
            "gx_success": summary["gx_success"],
            "gx_failed_expectations": summary["gx_failed"],
        }
    )


@dg.asset(
    key=COHORT_REPORT,
    deps=[PUBLISHED],
    group_name="reports",
    description="Cohort report (self-contained HTML + PNG figures) from the published snapshot.",
)
def cohort_report(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    result = reports.cohort(warehouse.get_home(), context.run_id)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(result["html_path"]),
            "preview": dg.MetadataValue.md(result["preview_markdown"]),
            "figures": len(result["figure_paths"]),
        }
    )


all_assets = [
    raw_files,
    *staged_assets,
    core_tables,
    feature_marts,
    omop_views,
    gx_validation,
    published_analytics,
    quality_report,
    cohort_report,
]
