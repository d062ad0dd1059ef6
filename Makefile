# rtcms - top-level Makefile. Quick start: `make demo`, `make test`.
# Builds go to build/ (release), build-asan/ (ASan+UBSan), build-tsan/
# (ThreadSanitizer), build-fuzz/ (clang).

JOBS ?= $(shell nproc)
BUILD ?= build
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 5
PREFIX ?= /usr/local

.PHONY: all deps build install test test-asan test-tsan fuzz soak demo bench clean help

all: build

help:
	@echo "make demo       install deps, build, run the demo cluster"
	@echo "make test       install deps, build, run every test (unit, integration, fuzz)"
	@echo "make test-asan  unit and integration tests under ASan+UBSan"
	@echo "make test-tsan  unit and integration tests under ThreadSanitizer"
	@echo "make fuzz       run every fuzz target for FUZZ_SECONDS (default 5)"
	@echo "make bench      run the benchmarks and rewrite docs/benchmarks.md"
	@echo "make soak       the chaos run alone, verbose: 100 random faults in a whole cluster"
	@echo "make install    build, then install into PREFIX (default /usr/local; DESTDIR honoured)"

deps:
	@scripts/install-deps -q

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

# README, "Install": binaries, librtcms, headers, pkg-config and CMake
# files, units, man pages, completion, example configs; DESTDIR from the
# environment or the command line is honoured (cmake --install reads it).
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

test: build
	@$(MAKE) --no-print-directory fuzz-build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) -LE fuzz
	cd build-fuzz && ctest --output-on-failure -L fuzz

test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DRTCMS_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	cd build-asan && RTCMS_TEST_TIME_SCALE=3 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS) -L 'unit|integration' -LE slow

# Under ThreadSanitizer: the unit and integration tests (not slow) but
# test_proto, which starts no thread (nothing for TSan to find) and whose
# every-truncation loops take minutes instrumented.
# Every instrumented process (tests, daemons, the programs they run) writes
# its reports to tsan-reports/report.PID; any report fails the target, even
# one from a daemon whose exit no test looked at.
TSAN_REPORTS = $(CURDIR)/build-tsan/tsan-reports
test-tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DRTCMS_TSAN=ON >/dev/null
	@cmake --build build-tsan -j $(JOBS)
	@rm -rf $(TSAN_REPORTS) && mkdir -p $(TSAN_REPORTS)
	cd build-tsan && { RTCMS_TEST_TIME_SCALE=4 \
	  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:log_path=$(TSAN_REPORTS)/report:suppressions=$(CURDIR)/tests/tsan.supp \
	  ctest --output-on-failure -j $(JOBS) -L 'unit|integration' -LE slow \
	    -E '^unit/test_proto$$'; rc=$$?; \
	  if [ -n "$$(ls $(TSAN_REPORTS))" ]; then cat $(TSAN_REPORTS)/*; \
	    echo "ThreadSanitizer reports: $(TSAN_REPORTS)"; rc=1; fi; exit $$rc; }

fuzz-build: deps
	@CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DRTCMS_FUZZ=ON -DRTCMS_FUZZ_SECONDS=$(FUZZ_SECONDS) >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target $$(cd tests/fuzz && ls fuzz_*.c 2>/dev/null | sed 's/\.c$$//')

fuzz: fuzz-build
	cd build-fuzz && ctest --output-on-failure -L fuzz

soak: build
	cd $(BUILD) && { ctest -V -L soak > soak.log 2>&1; rc=$$?; \
	  grep -E '^[0-9]+: (#|\[ )|tests passed|FAILED' soak.log; \
	  echo "(the whole output: $(BUILD)/soak.log)"; exit $$rc; }

demo: build
	@scripts/demo.sh $(BUILD)

bench: build
	@$(BUILD)/bench/bench_store --out docs/benchmarks.md
	@$(BUILD)/bench/bench_checkpoint --append docs/benchmarks.md
	@$(BUILD)/bench/bench_migrate --append docs/benchmarks.md
	@$(BUILD)/bench/bench_failover --append docs/benchmarks.md
	@$(BUILD)/bench/bench_incremental --append docs/benchmarks.md
	@$(BUILD)/bench/bench_recovery --append docs/benchmarks.md
	@$(BUILD)/bench/bench_crypto --append docs/benchmarks.md

clean:
	rm -rf build build-asan build-tsan build-fuzz
