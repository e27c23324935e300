# The two commands: `make run` and `make test`. See README.md.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

NATIVE := datasets/native/.built
BENCH_STAMP := $(VENV)/.bench-installed
MESH_SANDBOX := mesh-sandbox==1.0.137

.PHONY: run run-mesh test test-unit lint format bench clean system-packages-run system-packages-test

$(STAMP): requirements.txt constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	# NHS England's MESH server for the tests and `make run-mesh`, without its dependencies:
	# it asks for gunicorn<27, which only its container image uses (requirements.txt has
	# what it needs to run under uvicorn).
	$(BIN)/pip install --quiet --no-deps $(MESH_SANDBOX)
	touch $(STAMP)

# The pseudonymisation jobs' C modules (datasets/native: HMAC over OpenSSL 3, CSV records,
# the table of numbers). Without a C compiler and OpenSSL 3's headers (Debian: gcc,
# libssl-dev) the build fails, and so does make.
$(NATIVE): $(STAMP) datasets/native/build.py
	$(BIN)/python -m datasets.native.build
	touch $(NATIVE)

# Debian's packages: installed when root with apt-get, else the command to run is named.
system-packages-run:
	bash scripts/system-packages.sh run
system-packages-test:
	bash scripts/system-packages.sh test

## Start the embedded demo: web server on http://127.0.0.1:8000 and a Celery worker.
run: export PHM_DEMO ?= 1
run: system-packages-run $(STAMP) $(NATIVE)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/run-demo.sh

## The demo with national opt-out checks over MESH: a local mesh-sandbox server and a
## stand-in national service answering every file (see README, "National data opt-outs over MESH").
run-mesh: export PHM_DEMO ?= 1
run-mesh: system-packages-run $(STAMP) $(NATIVE)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/run-mesh.sh

## The whole test suite (integration tests run when DATABASE_URL and CELERY_BROKER_URL are set).
test: export PHM_DEMO ?= 1
test: system-packages-test $(STAMP) $(NATIVE)
	$(BIN)/python manage.py makemigrations --check --dry-run
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest

# The benchmarks' own dependencies (polars, to compare with), never the portal's.
$(BENCH_STAMP): $(STAMP) bench/requirements.txt
	$(BIN)/pip install --quiet -r bench/requirements.txt
	touch $(BENCH_STAMP)

## Benchmarks: each prints its figures and the ratio to its target.
bench: $(STAMP) $(NATIVE) $(BENCH_STAMP)
	PHM_DEMO=1 $(BIN)/python bench/consent_import.py
	PHM_DEMO=1 $(BIN)/python bench/consent_register.py
	PHM_DEMO=1 $(BIN)/python bench/notices_http.py
	PHM_DEMO=1 $(BIN)/python bench/pseudonymise.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var $(NATIVE) datasets/native/_hmac.* datasets/native/_records.*

