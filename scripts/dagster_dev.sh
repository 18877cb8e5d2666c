#!/usr/bin/env sh
# Dagster UI + daemon on the local warehouse: ./scripts/dagster_dev.sh [-p PORT] [dagster dev options]
# DAGSTER_HOME is $LABWH_HOME/dagster (written by pipelines.instance: telemetry off, local
# storage, one warehouse-writing run at a time). Sensors and the schedule start STOPPED unless
# LABWH_AUTOMATION=1.
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
LABWH_HOME="${LABWH_HOME:-$PWD/data}"
export LABWH_HOME
DAGSTER_HOME="$("$PYTHON" -m pipelines.instance "$LABWH_HOME")"
export DAGSTER_HOME
echo "LABWH_HOME=$LABWH_HOME  DAGSTER_HOME=$DAGSTER_HOME" >&2
exec "$PYTHON" -m dagster dev -m pipelines.definitions "$@"
