# The two commands a newcomer needs (README): `make demo` and `make test`.
# Each one bootstraps what is missing first (Debian packages, .venv, pinned packages).

VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench fuzz clean

setup:
	@bash .ci/bootstrap.sh

demo: setup
	$(BIN)/kiosk demo

test: setup
	$(BIN)/python -m pytest

bench: setup
	@set -e; for script in bench/*.py; do \
		echo "== $$script" >&2; \
		$(BIN)/python $$script; \
	done

# Every parser of outside bytes with 100,000 generated inputs each (~25 min on 2 cores);
# `make test` runs a short count of the same targets. Counts: test-artifacts/fuzz/report.json.
fuzz: setup
	@FUZZ_EXAMPLES=100000 $(BIN)/python -m pytest tests/fuzz/test_fuzz.py -q; status=$$?; \
		$(BIN)/python -m tests.fuzz --summary; exit $$status

clean:
	rm -rf $(VENV) demo-out test-artifacts var .pytest_cache .hypothesis
