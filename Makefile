# Chorus — the two commands a newcomer needs:
#   make run    install what is missing, build, and run a local cluster
#   make test   install what is missing, build, and run the whole suite
# Everything else here is a building block of those two.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build build-asan test test-fast test-asan run sweep bench bench-compare fuzz format clean

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@ninja -C $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHORUS_SANITIZE=ON $(CMAKE_FLAGS) >/dev/null
	@ninja -C $(ASAN_BUILD) -j $(JOBS)

# The whole suite: normal build, then AddressSanitizer + UBSan build.
test:
	@scripts/test

test-fast: build
	@cd $(BUILD) && ctest -j $(JOBS) --output-on-failure

test-asan: build-asan
	@cd $(ASAN_BUILD) && ctest -j $(JOBS) --output-on-failure

run: deps
	@scripts/run

# Long simulator sweeps, not part of `make test`.
SEEDS ?= 1..10000
sweep: build
	@$(BUILD)/bin/chorus sim --strategy raft --seeds $(SEEDS)

# libFuzzer targets (RESP parser, peer frame decoder), FUZZ_SECONDS each.
FUZZ_SECONDS ?= 60
fuzz: deps
	@scripts/fuzz $(FUZZ_SECONDS)

bench: build
	@scripts/bench

format:
	@git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# Chorus against etcd, ZooKeeper and Redis (issue 5): installs the peers and
# their client libraries, builds `chorus` with the etcd and zookeeper drivers
# (build-bench/, Release), runs scripts/bench-compare and rewrites its section
# of docs/benchmarks.md, docs/bench-compare.png and docs/bench-compare.json.
BENCH_BUILD ?= build-bench
bench-compare: deps
	@scripts/install-bench-deps
	@cmake -S . -B $(BENCH_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHORUS_BENCH_PEERS=ON $(CMAKE_FLAGS) >/dev/null
	@ninja -C $(BENCH_BUILD) -j $(JOBS) chorus chorusd
	@BENCH_BIN=$(BENCH_BUILD)/bin/chorus scripts/bench-compare
