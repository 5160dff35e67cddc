#!/bin/bash
# Runs hark's whole test suite: installs dependencies, builds, runs every
# test (unit + end-to-end) on a normal build, the unit tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer, and the fuzz targets for a
# bounded time. Ends with one summary line: "tests: N passed, N failed".
set -u
cd "$(dirname "$0")/.."

JOBS=${JOBS:-$(nproc)}
PASSED=0
FAILED=0

./scripts/setup.sh || exit 1

# ctest_run LABEL BUILD_DIR [ctest args...]: runs ctest, adds its counts.
ctest_run() {
    local label=$1 dir=$2
    shift 2
    echo "=== $label"
    local log
    log=$(mktemp)
    (cd "$dir" && ctest --output-on-failure --timeout 900 "$@") 2>&1 | tee "$log"
    local line
    line=$(grep -E "tests passed, [0-9]+ tests? failed out of" "$log" | tail -1)
    if [ -n "$line" ]; then
        local total failed
        total=$(echo "$line" | sed -E 's/.* out of ([0-9]+).*/\1/')
        failed=$(echo "$line" | sed -E 's/.* ([0-9]+) tests? failed.*/\1/')
        PASSED=$((PASSED + total - failed))
        FAILED=$((FAILED + failed))
    else
        echo "$label: no test summary (build or ctest failure)"
        FAILED=$((FAILED + 1))
    fi
    rm -f "$log"
}

# Our builds treat warnings as errors (HARK_WERROR; a user's build does not).
build() {
    local dir=$1
    shift
    cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHARK_WERROR=ON "$@" >/dev/null &&
        cmake --build "$dir" -j "$JOBS"
}

# A user's Release build (-O3 finds warnings -O2 does not): it must build
# clean. Counted as one test.
echo "=== Release build (-DCMAKE_BUILD_TYPE=Release, warnings as errors)"
if cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DHARK_WERROR=ON >/dev/null &&
    cmake --build build-release -j "$JOBS" >build-release/build.log 2>&1; then
    PASSED=$((PASSED + 1))
else
    tail -40 build-release/build.log
    echo "Release build failed"
    FAILED=$((FAILED + 1))
fi

# 1. normal build: everything
if build build; then
    ctest_run "all tests (release build)" build
else
    echo "build failed"
    FAILED=$((FAILED + 1))
fi

# 2. sanitizers: unit tests, and the riskiest end-to-end tests
if build build-asan -DHARK_SANITIZE=ON; then
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest_run "unit tests under ASan+UBSan" build-asan -L unit
    # The front ends that parse untrusted bytes and juggle connections, run
    # end to end under the sanitizers with leak checking: the NATS worker
    # (reconnects, restarts, shutdown; it must exit 0) and the container
    # decoders (Ogg, WebM, Opus) behind the CLI and the server.
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest_run "NATS and container end-to-end tests under ASan+UBSan" build-asan \
        -R 'e2e.test_(nats|containers)$'
else
    echo "sanitizer build failed"
    FAILED=$((FAILED + 1))
fi

# 3. fuzz targets (clang libFuzzer), bounded time each
if CC=clang CXX=clang++ build build-fuzz -DHARK_FUZZ=ON -DBUILD_TESTING=ON; then
    ctest_run "fuzz targets" build-fuzz -L fuzz
else
    echo "fuzz build failed"
    FAILED=$((FAILED + 1))
fi

echo
echo "tests: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
