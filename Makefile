# Chorus — the two commands a newcomer needs:
#   make run    install what is missing, build, and run a local cluster
#   make test   install what is missing, build, and run the whole suite
# Everything else here is a building block of those two.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps build build-asan test test-fast test-asan run sweep bench bench-compare bench-ab fuzz format clean

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

# The Google Benchmark programs of the build: the linearizability checker,
# the state machines, the write-ahead log and snapshot files (temporary files
# under /tmp, removed afterwards). docs/benchmarks.md says what each measures
# and which environment variables size them; BENCH_ARGS goes to each program
# (e.g. BENCH_ARGS=--benchmark_filter=Check).
BENCH_PROGRAMS = check_bench kv_bench storage_bench
bench: build
	@for b in $(BENCH_PROGRAMS); do echo "== $(BUILD)/bin/$$b"; $(BUILD)/bin/$$b $(BENCH_ARGS) || exit 1; done

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

# Did a change make Chorus slower? Builds OLD (a git revision) and NEW (a
# revision, or . for the working tree) in Release under $(AB_BUILD)/, then
# scripts/bench-ab runs an all-OLD and an all-NEW 3-node cluster side by side
# and measures `chorus bench` set/get at 1 and 50 clients against each,
# ROUNDS alternating runs per cell: medians, spreads, NEW/OLD ratios.
OLD ?=
NEW ?= .
ROUNDS ?= 5
AB_BUILD ?= build-ab
bench-ab: deps
	@test -n "$(OLD)" || { echo "usage: make bench-ab OLD=<rev> [NEW=<rev>|.] [ROUNDS=5]" >&2; exit 2; }
	@scripts/bench-ab $(OLD) $(NEW) --rounds $(ROUNDS) --build-dir $(AB_BUILD) --jobs $(JOBS)
