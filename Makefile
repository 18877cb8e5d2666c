# The README's commands. Both bootstrap uv from pip and sync from the committed lock.
# setup writes the bytecode of the environment and of our packages once, at install time:
# where PYTHONDONTWRITEBYTECODE is set (CI images often set it), every process would otherwise
# compile dagster, great_expectations, … from source on each start (about 10 s a process).
PYTHON ?= python3
UV := $(PYTHON) -m uv
RUN := $(UV) run --frozen
export LABWH_HOME ?= $(CURDIR)/data
DEMO_PATIENTS ?= 200
DEMO_SEED ?= 7

.PHONY: setup demo test lint format bench-features bench-hl7 dev clean

setup:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	@$(UV) sync --frozen --quiet --compile-bytecode
	@$(RUN) python -m compileall -q -j 0 pipelines transforms schemas warehouse

demo: setup
	@rm -rf "$(LABWH_HOME)/demo_input"
	$(RUN) labwh generate --patients $(DEMO_PATIENTS) --seed $(DEMO_SEED) --out "$(LABWH_HOME)/demo_input"
	$(RUN) labwh run --landing "$(LABWH_HOME)/demo_input/landing"
	@echo ""
	@echo "Warehouse (writer):   $(LABWH_HOME)/warehouse.duckdb"
	@echo "Analyst snapshot:     $(LABWH_HOME)/published/analytics.duckdb   (labwh sql)"
	@echo "Reports:              $(LABWH_HOME)/reports/"
	@echo "Generated input:      $(LABWH_HOME)/demo_input/ (landing/ + truth/)"

# one pytest worker per CPU this process may use (affinity, not physical cores: xdist's
# "auto" counts physical cores, 1 on a 2-vCPU hyperthreaded VM), at most 4 (the lock and
# crash tests wait on other processes); each test file on one worker (files share session
# fixtures). TEST_WORKERS=1 make test runs them one after another.
TEST_WORKERS ?= $(shell $(PYTHON) -c "import os; n = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count(); print(max(1, min(4, n or 1)))")
test: setup
	$(RUN) pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check .

format: setup
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

bench-features: setup
	$(RUN) python bench/bench_features.py --patients 10000 --pandas-sample 500 --repeat 3 --write
	$(RUN) python bench/bench_features.py --patients 100000 --pandas-sample 300 --repeat 3 --write
	$(RUN) python bench/bench_features.py --patients 1000000 --pandas-sample 300 --repeat 3 --write

bench-hl7: setup
	$(RUN) python bench/bench_hl7.py --sizes 50000 200000 --baseline-messages 20000

dev: setup
	$(RUN) python -m pipelines.instance "$(LABWH_HOME)" >/dev/null
	DAGSTER_HOME="$(LABWH_HOME)/dagster" $(RUN) dagster dev -m pipelines.definitions

clean:
	rm -rf "$(LABWH_HOME)"
