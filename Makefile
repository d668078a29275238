# The two commands of the README: `make demo` and `make test`. Both create .venv when
# missing and install the pinned packages (requirements.lock) before doing their job.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 3000

.PHONY: demo test setup system-deps lint bench lock clean-demo

demo: setup
	PORT=$(PORT) bash scripts/demo.sh

# Two pytest-xdist workers, one test module (or the demo fleet's modules together) at a time on each, longest
# first: tests/harness/parallel.py says why. A plain `pytest` runs serially.
PYTEST_PARALLEL ?= -n 2 --dist loadfile --no-loadscope-reorder

test: setup system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_PARALLEL)

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	bash scripts/install-system-deps.sh build
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

system-deps:
	bash scripts/install-system-deps.sh

lint: setup
	$(BIN)/ruff check .

bench: setup
	$(BIN)/python bench/factory_bench.py --engine all
	$(BIN)/python bench/queue_sweep_bench.py
	$(BIN)/python bench/snapshot_bench.py --engine all
	$(BIN)/python bench/zuora_sync_bench.py
	$(BIN)/python bench/redis_probe_bench.py
	$(BIN)/python bench/spool_retry_bench.py --engine all
	$(BIN)/python bench/spool_latency_bench.py
	$(BIN)/python bench/spool_sensor_bench.py --engine all

# Re-resolve and pin every package (run after changing pyproject.toml's dependencies).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -e '.[dev,deploy]'
	{ echo "# Exact versions of every package fleetops installs (pip freeze of a resolved venv)."; \
	  echo "# Regenerate: make lock"; .venv-lock/bin/pip freeze --exclude-editable; } > requirements.lock
	rm -rf .venv-lock

clean-demo:
	rm -rf .fleetops
