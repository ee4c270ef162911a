# The two commands a new user needs: `make run` and `make test`; `make check` is the
# quick everyday test run. Everything else here is a convenience around CMake presets.
JOBS ?= $(shell nproc)
ARGS ?=

.PHONY: all deps deps-packaging build build-eco debug asan run check test test-release test-asan fuzz clean
.PHONY: tsan test-tsan test-fuzz soak
.PHONY: bench bench-deps bench-peers scale-bench deb

all: build

deps:
	@scripts/install-deps.sh

# lintian, promtool, zsh...: for the package and its tests, not for running eco.
deps-packaging:
	@scripts/install-deps.sh packaging

build: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

debug: deps
	cmake --preset debug >/dev/null
	cmake --build --preset debug -j $(JOBS)

asan: deps
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)

# Only the eco binary: the test suite is built by the test targets.
build-eco: deps
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS) --target eco

# Builds and starts the echo server on the tutorial's address (127.0.0.1:5346).
run: build-eco
	./build/release/eco serve $(ARGS)

# Everyday tests, a few minutes: the release build's unit, integration and packaging
# tests (the check test preset); the namespace, hostile, soak, scale, bench and Debian
# package tests are left to `make test`.
check: build deps-packaging
	ctest --preset check

# All tests, in a release build and again under AddressSanitizer + UBSan, then each
# libFuzzer target for 25 s, then the multi-threaded tests under ThreadSanitizer
# (docs/reliability.md).
test: test-release test-asan test-fuzz test-tsan

test-fuzz:
	$(MAKE) fuzz FUZZ_SECONDS=25

test-release: build deps-packaging
	ctest --preset release

test-asan: asan deps-packaging
	ctest --preset asan

# The Debian package (CPack, cmake/packaging.cmake): build/release/deb/eco_VERSION_ARCH.deb,
# with the binary, man pages, completions, systemd units and /etc/eco/eco.toml.
deb: build-eco deps-packaging
	cmake --build --preset release -j $(JOBS) --target eco_docs
	cpack --config build/release/CPackConfig.cmake -B build/release/deb
	@ls build/release/deb/*.deb

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

# libFuzzer targets (clang, ASan+UBSan), each run for FUZZ_SECONDS over a copy of its
# committed seed corpus, two at a time; any crash fails. A longer run: FUZZ_SECONDS=3600.
FUZZ_SECONDS ?= 30
fuzz:
	@scripts/install-deps.sh fuzz
	tests/fuzz/run.sh $(FUZZ_SECONDS)

# The multi-threaded tests (servers with 2 loop threads, bench with several) under
# ThreadSanitizer: only the targets they need are built; the tsan test preset selects them.
tsan: deps
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS)

test-tsan: tsan
	ctest --preset tsan

# Reliability soak (not in `make test`): SOAK_SECONDS of mixed load, churn and faults.
SOAK_SECONDS ?= 600
soak: build
	scripts/soak.sh build/release/eco $(SOAK_SECONDS)

# Scale-out (docs/scaling.md): the same load against 1, 2 and 3 eco servers through
# HAProxy and over ECMP on the namespace test bed (scripts/testbed/). Needs root.
# Not part of `make test`; the bed's test is in ctest (label scale).
scale-bench: build
	bench/scale.sh build/release/eco docs/results/scale.json

clean:
	rm -rf build
