# Two commands matter: `make demo` (the main job) and `make test` (the whole suite).
# Both build .venv from nothing with only python3 on the machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck pytest pytest-portable docs bench clean test-windows

# The tools are PEP 735 dependency groups of pyproject.toml, which pip >= 25.1
# installs with --group (hence the upgrade of pip first).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e . --group dev
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/trioproc run examples/trioproc.toml --for 8 & \
	sleep 4; $(BIN)/trioproc ctl -f examples/trioproc.toml status; wait

test: lint typecheck pytest docs test-windows

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict trioproc
	$(BIN)/mypy --strict --platform win32 --follow-imports=silent trioproc/_os/_windows.py

# Coverage writes one data file per process (patch = subprocess), so the
# portable pass adds to the first one's measurement before it is combined.
pytest: $(STAMP)
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest -p no:cacheprovider
	$(MAKE) --no-print-directory pytest-portable
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report

# The suites that hold wherever Trio runs, a second time on the portable
# backend (the one macOS and Windows use); tests of Linux-only features skip,
# naming the reason.
PORTABLE_TESTS := tests/test_contract.py tests/test_streams.py tests/test_run.py \
	tests/test_run_vocabulary.py tests/test_flow.py tests/test_endings.py \
	tests/test_supervisor.py tests/test_supervisor_start.py tests/test_portable.py \
	tests/test_pipeline.py

pytest-portable: $(STAMP)
	TRIOPROC_BACKEND=portable $(BIN)/coverage run -m pytest -p no:cacheprovider \
		$(PORTABLE_TESTS)

# Warnings are errors, so a broken cross-reference fails `make test`.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -q -b html docs docs/_build/html

# The Windows tests, by a Windows CPython under Wine (tools/wine/setup.sh builds it in
# /tmp, apt and PyPI only). Without root and apt, setup prints one line (exit 3) and this
# goes on; any other set-up failure fails the target. Then tests/wine_console, from
# Linux: the trioproc command on a Windows console (Wine on a pty), Ctrl-C and colours.
test-windows: $(STAMP)
	@out=$$(tools/wine/setup.sh); rc=$$?; winpy=$$(echo "$$out" | tail -n 1); \
	if [ $$rc = 3 ]; then echo "$$winpy"; exit 0; fi; \
	if [ $$rc != 0 ]; then echo "$$out"; echo "test-windows: set-up failed ($$rc)"; exit 1; fi; \
	(cd /tmp && PYTHONPATH="Z:$(CURDIR)" "$$winpy" -m pytest -p no:cacheprovider \
	  --rootdir "Z:$(CURDIR)" --confcutdir "Z:$(CURDIR)/tests/windows" -q \
	  "Z:$(CURDIR)/tests/windows") && \
	TRIOPROC_WINPY_CONSOLE="$$winpy-console" $(BIN)/python -m pytest -p no:cacheprovider \
	  -q tests/wine_console

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --group bench
	$(BIN)/python benchmarks/suite.py --rounds 5

clean:
	rm -rf $(VENV) .coverage .mypy_cache .ruff_cache docs/_build
