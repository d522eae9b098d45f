# Two commands for a newcomer: `make demo` and `make test`.
# Each creates or refreshes the local virtualenv in .venv, installs the project, then runs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
# pytest-xdist workers for `make test`: most tests wait (a simulated day in real time, timers of
# fault tests, servers starting, PostgreSQL's checkpoints) rather than compute, so 4 on 2 cores;
# whole files go to one worker (their module fixtures are built once), files with a test marked slow
# first (tests/conftest.py). TEST_WORKERS=0: one process.
TEST_WORKERS ?= 4

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/greengauge demo

# Bytecode is cached in __pycache__ (ignored by git), pytest's assertion-rewritten modules too: where
# PYTHONDONTWRITEBYTECODE is set, every worker of every run would compile and rewrite them again
# (about 370 modules, 4 s of CPU a worker), so the tests run without it.
test: $(STAMP)
	$(BIN)/lint-imports --no-cache
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: $(STAMP)
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .greengauge build *.egg-info
