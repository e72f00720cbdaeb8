# The two commands a newcomer needs (README): `make demo` and `make test`.
# Each one bootstraps what is missing first (Debian packages, .venv, pinned packages).

VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup demo test bench clean

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

clean:
	rm -rf $(VENV) demo-out test-artifacts var .pytest_cache .hypothesis
