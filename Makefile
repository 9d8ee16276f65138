# tradecore: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
# The interpreter .venv is made from: Debian's optimised build when present (see the script).
PY    ?= $(shell scripts/pick-python.sh)
VENV  := $(CURDIR)/.venv
VPY   := $(VENV)/bin/python
CARGO ?= cargo
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)

.PHONY: all venv build demo test test-rust test-py lint fmt bench bench-rust bench-py bench-node onnx-model peer fuzz soak bench-venue bench-backtest peer-backtest hiccups clean

all: build

# The environment: a venv at .venv with the dev tools, rebuilt when pyproject.toml changes.
$(VENV)/.stamp: pyproject.toml scripts/pick-python.sh
	@if [ -x $(VPY) ] && ! grep -qx "executable = $$(readlink -f "$$(command -v $(PY))")" $(VENV)/pyvenv.cfg; then \
	    echo "recreating .venv with $(PY)"; rm -rf $(VENV); fi
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet "maturin>=1.7,<2" "numpy>=1.26" "pytest>=8" "hypothesis>=6.100" \
	    "ruff>=0.6" "mypy>=1.11" "hdrhistogram>=0.10" "matplotlib>=3.8" \
	    "websockets>=13" "httpx>=0.27" "pydantic>=2.7" "prometheus_client>=0.20" \
	    "onnxruntime>=1.18" "scikit-learn>=1.5" "skl2onnx>=1.17" "pyarrow>=15" "pandas>=2.2" \
	    "plotly>=5.20" "numba>=0.60" "tqdm>=4.66" "dask[distributed]>=2024.5"
	scripts/ensure-debian-packages.sh
	touch $@

venv: $(VENV)/.stamp

# Build the Rust extension in release mode and install the package into the venv (editable).
build: venv
	@echo "building the Rust core (release) into .venv ..."
	@maturin develop --release > $(VENV)/build.log 2>&1 || { cat $(VENV)/build.log; exit 1; }
	@$(VPY) -c "import tradecore; print('tradecore', tradecore.__version__, 'built')"

demo: build
	$(VENV)/bin/tradecore demo

test: build lint test-rust test-py

test-rust:
	$(CARGO) test --workspace --profile ci

test-py:
	$(VPY) -m pytest -q

lint: venv
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings
	$(VPY) -m ruff check python tests bench examples
	$(VPY) -m ruff format --check python tests bench examples
	$(VPY) -m mypy
	$(VPY) -m mypy.stubtest tradecore._core

fmt: venv
	$(CARGO) fmt --all
	$(VPY) -m ruff format python tests bench examples
	$(VPY) -m ruff check --fix python tests bench examples

# Benchmarks print figures; they are never part of `make test`.
bench: bench-rust bench-py

bench-rust:
	mkdir -p bench/results
	TRADECORE_BENCH_JSON=$(CURDIR)/bench/results/book_latency.json $(CARGO) bench -p tradecore-book --bench latency
	$(CARGO) bench -p tradecore-book --bench book
	$(CARGO) bench -p tradecore-engine --bench venue
	$(CARGO) bench -p tradecore-engine --bench restart
	$(CARGO) bench -p tradecore-engine --bench journal
	$(CARGO) bench -p tradecore-engine --bench ring

bench-py: build
	OPENBLAS_NUM_THREADS=1 $(VPY) bench/bench_core.py
	OPENBLAS_NUM_THREADS=1 $(VPY) bench/bench_marketdata.py
	OPENBLAS_NUM_THREADS=1 $(VPY) bench/bench_strategy.py
	OPENBLAS_NUM_THREADS=1 $(VPY) bench/bench_broker.py
	OPENBLAS_NUM_THREADS=1 $(VPY) bench/bench_node.py

# The trading node alone: tick-to-trade and messages/s with the share of each stage.
bench-node: build
	OPENBLAS_NUM_THREADS=1 $(VPY) bench/bench_node.py

# Retrain the example ONNX model from the Binance recordings (examples/models/updown_lr.onnx).
onnx-model: build
	OPENBLAS_NUM_THREADS=1 $(VPY) examples/train_onnx.py

peer: build
	OPENBLAS_NUM_THREADS=1 $(VPY) bench/peer_nautilus.py

# The venue under load from the load generator (waits for a quiet machine; --quick for a smoke run).
bench-venue: build
	$(VPY) bench/loadgen_bench.py

# The machine itself: how often and how long a busy thread loses the CPU (2 threads, 30 s).
hiccups: build
	$(VPY) -m tradecore hiccups --threads 2 --seconds 30

# Crash soak: SIGKILL trials of the venue under load (bench/soak_venue.py); make test runs 3.
SOAK_TRIALS ?= 100
soak: build
	$(VPY) bench/soak_venue.py --trials $(SOAK_TRIALS)

# Coverage-guided fuzzing of the decoders, journal recovery and the book against its reference
# (cargo-fuzz, installed by the script if missing; FUZZ_SECONDS per target). Never in make test.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

# Backtester: parameter sweeps (vs vectorbt, installed here only) and the nautilus backtest peer.
bench-backtest: build
	$(VPY) -m pip install --quiet "vectorbt>=0.26"
	OPENBLAS_NUM_THREADS=1 $(VPY) bench/bench_sweep.py

peer-backtest: peer
	$(VPY) bench/peer_backtest.py

clean:
	$(CARGO) clean
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
