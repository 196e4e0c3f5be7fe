# The two commands: `make run` starts the shop, `make test` checks it.
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' && echo $$p && break; done)

.PHONY: run test lint unit integration integration-services upgrade system browser bench-smoke bench-growth-smoke bench-watchers-smoke bench-faults-smoke chaos chaos-fast cluster-chaos clean

$(BIN)/shoeshop: pyproject.toml
	@test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

run: $(BIN)/shoeshop
	$(BIN)/shoeshop up

# `make test`, under 10 minutes on the 2-core machine CI uses (the failure matrix, `make chaos`,
# and the benchmarks' smoke runs come after it in .ci/run), in five lanes at once: lint then the
# unit suite; the integration suite on the embedded Redis + SQLite; the integration suite on
# RabbitMQ + PostgreSQL in two halves (test_a* to test_m*, test_n* to test_z*), each with its
# own vhost and database; the system, upgrade and browser suites. They share nothing (each suite
# its own broker, vhost, databases and ports) and mostly wait on them, so together they take
# about the longest lane's time. A lane runs all of its targets even when one fails (make -k);
# each lane's output goes to var/test-logs/<lane>.log and is printed when all are done. (A test
# that needs a steady order rate, in test_retention, paces its orders and compares medians: the
# lanes' start-ups take the CPU in bursts.)
test: $(BIN)/shoeshop
	@mkdir -p var/test-logs
	@lane() { log=var/test-logs/$$1.log; shift; $(MAKE) --no-print-directory -k "$$@" > $$log 2>&1; }; \
	lane checks lint unit & checks=$$!; \
	lane integration integration & embedded=$$!; \
	lane services-a-m integration-services SUITE='tests/integration/test_[a-m]*.py' & first=$$!; \
	lane services-n-z integration-services SUITE='tests/integration/test_[n-z]*.py' & second=$$!; \
	lane system system upgrade browser & system=$$!; \
	failed=0; for pid in $$checks $$embedded $$first $$second $$system; do \
		wait $$pid || failed=1; done; \
	for name in checks integration services-a-m services-n-z system; do \
		echo "== $$name"; cat var/test-logs/$$name.log; done; \
	exit $$failed

lint: $(BIN)/shoeshop
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(BIN)/shoeshop
	$(BIN)/pytest -q tests/unit

# The integration suite on the embedded Redis + SQLite, then on RabbitMQ + PostgreSQL
# (skipped where those are not running, unless SHOESHOP_REQUIRE_SERVICES=1).
integration: $(BIN)/shoeshop
	$(BIN)/pytest -q tests/integration

integration-services: $(BIN)/shoeshop
	SHOESHOP_TEST_STACK=services $(BIN)/pytest -q $(or $(SUITE),tests/integration)

# Release 0.1.0's shop, left mid-flight (tests/upgrade/v0_1_0), upgraded and run by this code on
# the embedded Redis + SQLite and on RabbitMQ + PostgreSQL: nothing may be lost (docs/upgrades.md).
upgrade: $(BIN)/shoeshop
	$(BIN)/pytest -q tests/upgrade

system: $(BIN)/shoeshop
	$(BIN)/pytest -q tests/system

# Headless Chromium (Debian's, driven by Playwright) walks the pages of `shoeshop up`;
# screenshots land in var/screenshots/.
browser: $(BIN)/shoeshop
	$(BIN)/pytest -q tests/browser

# The benchmark keeps working (.ci/run runs it after `make test`): a few hundred orders through
# the system and both baselines (the naive Celery shop and the no-op chain). No timing is
# asserted; the numbers land in var/bench/ (docs/performance.md has real runs).
bench-smoke: $(BIN)/shoeshop
	$(BIN)/shoeshop bench --orders 200 --burst --warmup 10

# The growth bench at a small size on SQLite, then on PostgreSQL when it runs here (.ci/run runs
# this after `make test`; docs/performance.md has the million-order runs).
bench-growth-smoke: $(BIN)/shoeshop
	$(BIN)/shoeshop bench growth --to 2000 --requests 200 --rounds 1
	@if $(BIN)/python -c "import socket; socket.create_connection(('127.0.0.1', 5432), 1)" \
		2>/dev/null || [ "$$SHOESHOP_REQUIRE_SERVICES" = 1 ]; then \
		$(BIN)/shoeshop bench growth --to 2000 --requests 200 --rounds 1 \
			--database-url postgresql://postgres@127.0.0.1:5432/postgres; \
	else echo "PostgreSQL is not running here: the growth bench ran on SQLite only"; fi

# The live-tracking phase with 500 streams (.ci/run runs it after `make test`; docs/performance.md
# has the 10,000-stream runs). It fails when a stream is refused or misses its order's last change.
bench-watchers-smoke: $(BIN)/shoeshop
	$(BIN)/shoeshop bench --watchers 500

# The naive Celery shop under one of the matrix's faults, every message delivered twice, with 20
# orders (.ci/run runs it after `make test`; docs/performance.md has the 100-order runs of all
# three). It fails when the command does; what the naive shop loses is a finding, not a failure.
bench-faults-smoke: $(BIN)/shoeshop
	$(BIN)/shoeshop bench faults --orders 20 --scenario duplicate-delivery

# The failure matrix (docs/reliability.md): every scenario on Redis and RabbitMQ, real processes
# broken on purpose; prints the table and writes var/chaos/results.json. RabbitMQ scenarios stop
# and start this machine's RabbitMQ application, so nothing else should use it meanwhile.
chaos: $(BIN)/shoeshop
	$(BIN)/pytest -q tests/chaos

# A quick slice of it: three scenarios on the embedded Redis, fewer orders (about a minute).
chaos-fast: $(BIN)/shoeshop
	$(BIN)/pytest -q tests/chaos -m chaos_fast -k redis --chaos-fast

# Issue #18's test bed: the shop on hosts of its own (network namespaces on a private link),
# three clustered RabbitMQ nodes and a PostgreSQL of the test's own, 10 orders/s, one fault a
# scenario (docs/reliability.md, *The cluster bed*). Needs root; leaves the machine's own RabbitMQ,
# Redis and PostgreSQL alone. Prints the table and writes var/chaos/cluster.json.
cluster-chaos: $(BIN)/shoeshop
	$(BIN)/pytest -q tests/cluster

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
