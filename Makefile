# The two commands a new user needs: `make run` and `make test`.
# Everything else here is a convenience around CMake presets.
JOBS ?= $(shell nproc)
ARGS ?=

.PHONY: all deps build debug asan run test test-release test-asan fuzz clean
.PHONY: bench bench-deps bench-peers scale-bench

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

debug: deps
	cmake --preset debug >/dev/null
	cmake --build --preset debug -j $(JOBS)

asan: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)

# Builds and starts the echo server on the tutorial's address (127.0.0.1:5346).
run: build
	./build/release/eco serve $(ARGS)

# All tests, in a release build and again under AddressSanitizer + UBSan.
test: test-release test-asan

test-release: build
	ctest --preset release

test-asan: asan
	ctest --preset asan

# Peer comparison (bench/): eco against the echo servers a user would pick instead.
# Not part of `make test`. BENCH_ARGS=--quick gives a one-minute smoke run.
# Writes docs/peers.md and docs/results/. See bench/README.md.
BENCH_ARGS ?=
bench-deps:
	@scripts/install-deps.sh bench

# `make bench` = the peer comparison: docs/benchmarks.md (ratio table, targets, chart)
# and docs/peers.md (full tables). Full run about 12 minutes; BENCH_ARGS=--quick about 1.
bench: bench-peers

bench-peers: build bench-deps
	bench/peers/build.sh build/peers
	/usr/bin/python3 bench/run_peers.py --eco build/release/eco --peers-dir build/peers $(BENCH_ARGS)

# libFuzzer targets (clang, ASan+UBSan) run for FUZZ_SECONDS each over the committed
# seed corpus, copied so the seeds in git stay as they are.
FUZZ_SECONDS ?= 30
FUZZ_TARGETS = proxy_protocol address
fuzz:
	@scripts/install-deps.sh fuzz
	CXX=clang++ cmake -S . -B build/fuzz -G Ninja -DECO_FUZZ=ON -DECO_SANITIZE=address,undefined \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build build/fuzz -j $(JOBS) --target $(addsuffix _fuzz,$(FUZZ_TARGETS))
	@for t in $(FUZZ_TARGETS); do \
	  rm -rf build/fuzz/corpus/$$t && mkdir -p build/fuzz/corpus/$$t && cp tests/fuzz/corpus/$$t/* build/fuzz/corpus/$$t/ && \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s" && \
	  if ! build/fuzz/tests/fuzz/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	      -artifact_prefix=build/fuzz/ build/fuzz/corpus/$$t > build/fuzz/$$t.log 2>&1; then \
	    tail -40 build/fuzz/$$t.log; echo "fuzz: $$t FAILED (crash input in build/fuzz/)"; exit 1; \
	  fi; grep DONE build/fuzz/$$t.log; \
	done

# Scale-out (docs/scaling.md): the same load against 1, 2 and 3 eco servers through
# HAProxy and over ECMP on the namespace test bed (scripts/testbed/). Needs root.
# Not part of `make test`; the bed's test is in ctest (label scale).
scale-bench: build
	bench/scale.sh build/release/eco docs/results/scale.json

clean:
	rm -rf build
