# Satchel: `make run` starts everything on embedded defaults, `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi

.PHONY: run test test-fast venv dev-venv lint bench bench-load clean

# Each command names its environment: with none, the app runs as production and refuses to start
# without its settings.
run bench bench-load: export SATCHEL_ENV ?= development
test test-fast: export SATCHEL_ENV = testing

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Reinstall only when the pinned requirements change.
$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

dev-venv: $(VENV)/.installed-dev

# s3rver (npm) for the presigned-URL expiry tests; reinstalled only when the lock file changes.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the tests (Debian: apt-get install nodejs npm)"; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The Debian packages first (installed when missing and possible, or the command that would is shown).
run:
	@scripts/system-packages.sh run
	@$(MAKE) --no-print-directory venv
	@mkdir -p instance
	$(BIN)/flask db upgrade
	$(BIN)/python -m devtools.run

test:
	@scripts/system-packages.sh test
	@$(MAKE) --no-print-directory dev-venv node_modules/.installed
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The everyday loop: everything but the tests marked slow (fault, browser, signature, scanner limits,
# bombs), spread over one process per core plus one (the tests spend much of their time waiting on S3
# and clamd), a module to each at a time.
FAST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
test-fast:
	@scripts/system-packages.sh test
	@$(MAKE) --no-print-directory dev-venv
	$(BIN)/python -m pytest -m "not slow" -n $(FAST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Lint and format, checked over the whole tree (`ruff format` applies the format).
LINTED := webapp tests bench devtools migrations wsgi.py
lint: dev-venv
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

# Uppy Companion, the peer bench/presign measures against; reinstalled when its lock file changes.
bench/companion/node_modules/.installed: bench/companion/package.json bench/companion/package-lock.json
	cd bench/companion && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The benchmarks, one after the other (PostgreSQL and Redis: BENCH_DATABASE_URL, BENCH_REDIS_URL):
# complete -> available, the listing and a request by files held, presign under load next to a bare
# signer and Companion, large scans next to a bare GET and clamd, a 1 GiB upload next to boto3, then
# the load test.
bench: dev-venv
	@scripts/system-packages.sh bench
	@$(MAKE) --no-print-directory bench/companion/node_modules/.installed
	$(BIN)/python -m bench.complete_to_available
	$(BIN)/python -m bench.listing
	$(BIN)/python -m bench.presign
	$(BIN)/python -m bench.scan
	$(BIN)/python -m bench.upload
	$(BIN)/python -m bench.load $(BENCH_ARGS)

# Needs PostgreSQL and Redis (BENCH_DATABASE_URL, BENCH_REDIS_URL); BENCH_ARGS="--users 20 --duration 30".
bench-load: dev-venv
	$(BIN)/python -m bench.load $(BENCH_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache node_modules bench/companion/node_modules
