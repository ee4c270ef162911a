# The two commands a new user needs: `make run` and `make test`.
# Everything else here is a convenience around CMake presets.
JOBS ?= $(shell nproc)
ARGS ?=

.PHONY: all deps build debug asan run test test-release test-asan clean

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

clean:
	rm -rf build
