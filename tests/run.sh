#!/usr/bin/env bash
# The test command: installs dependencies, builds `build` (normal; -Werror when CI=true) and
# `build-asan` (ASan+UBSan), runs the criterion unit tests of both, then the integration
# tests (pytest, real sealmaild) against both binaries, then every fuzz target briefly
# (`build-fuzz`, clang). Ends with exactly one line
# "N passed, N failed" and exits non-zero if anything failed.
#
#   tests/run.sh                  everything
#   SEALMAIL_SKIP_ASAN=1 tests/run.sh    only the normal build (quicker, local use)
#   SEALMAIL_SKIP_DEPS=1 tests/run.sh    do not run deploy/install-deps.sh
#   SEALMAIL_SKIP_FUZZ=1 tests/run.sh    no fuzz step (FUZZ_SECONDS=8: seconds per target)
#   PYTEST_ARGS="-k starttls" tests/run.sh   extra pytest arguments
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=/usr/bin/python3
JOBS=$(nproc 2>/dev/null || echo 2)
LOGDIR="$ROOT/build-logs"
START=$SECONDS

say() { printf '==> %s\n' "$*" >&2; }

if [ -z "${SEALMAIL_SKIP_DEPS:-}" ]; then
  say "dependencies (deploy/install-deps.sh)"
  if ! "$ROOT/deploy/install-deps.sh"; then
    echo "install-deps.sh failed" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
fi

WERROR=false
[ "${CI:-}" = true ] && WERROR=true

BUILDS=(build)
[ -z "${SEALMAIL_SKIP_ASAN:-}" ] && BUILDS+=(build-asan)

# Results: one file per step under $LOGDIR, each holding "passed failed label".

rm -rf "$LOGDIR"
mkdir -p "$LOGDIR"
# Node clients (nodemailer, imapflow) for the integration tests, from the lock file.
if command -v npm >/dev/null 2>&1 && [ -f tests/integration/node/package-lock.json ]; then
  say "node clients (npm ci)"
  npm ci --prefix tests/integration/node --no-audit --no-fund >"$LOGDIR/npm.log" 2>&1 ||
    say "npm ci failed (see $LOGDIR/npm.log); node client tests will skip"
fi

record() { echo "$1 $2 $3" >>"$LOGDIR/results"; }

setup_build() { # dir, extra meson options...
  local dir=$1
  shift
  local opts=(-Dbuildtype=debugoptimized "$@")
  if [ -f "$dir/meson-private/coredata.dat" ]; then
    meson configure "$dir" "${opts[@]}" >"$LOGDIR/$dir-setup.log" 2>&1 ||
      meson setup --wipe "$dir" "${opts[@]}" >"$LOGDIR/$dir-setup.log" 2>&1
  else
    meson setup "$dir" "${opts[@]}" >"$LOGDIR/$dir-setup.log" 2>&1
  fi
}

summarize_unit() { # dir label
  "$PY" - "$1/meson-logs/testlog.json" "$2" <<'EOF'
import json, re, sys
path, label = sys.argv[1], sys.argv[2]
synth = re.compile(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)")
passed = failed = 0
try:
    lines = open(path).read().splitlines()
except OSError:
    print("0 1 %s" % label)
    sys.exit()
for l in lines:
    t = json.loads(l)
    out = (t.get("stdout") or "") + (t.get("stderr") or "")
    m = list(synth.finditer(out))
    leaks = out.count("ERROR: LeakSanitizer")
    ubsan = len(set(x for x in out.splitlines() if "runtime error:" in x))
    bad = leaks + ubsan
    if m:
        tested, passing, failing, crashing = (int(x) for x in m[-1].groups())
        p, f = passing, failing + crashing
        if t["result"] not in ("OK", "EXPECTEDFAIL") and f == 0:
            f = 1  # failed outside any test case (timeout, crash at exit)
    else:
        p, f = (1, 0) if t["result"] == "OK" else (0, 1)
    if bad:
        moved = min(bad, p)
        p -= moved
        f += bad
        print("  %s: %s: %d sanitizer report(s) (LeakSanitizer/UBSan)" % (label, t["name"], bad),
              file=sys.stderr)
    if f:
        print("  %s: %s: %d failed (%s)" % (label, t["name"], f, t["result"]), file=sys.stderr)
    passed += p
    failed += f
print("%d %d %s" % (passed, failed, label))
EOF
}

summarize_pytest() { # junit.xml rc label
  "$PY" - "$1" "$2" "$3" <<'EOF'
import sys, xml.etree.ElementTree as ET
path, rc, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
passed = failed = skipped = 0
try:
    root = ET.parse(path).getroot()
    cases = list(root.iter("testcase"))
except (OSError, ET.ParseError):
    cases = []
for c in cases:
    kids = {k.tag for k in c}
    if kids & {"failure", "error"}:
        failed += 1
    elif "skipped" in kids:
        skipped += 1
    else:
        passed += 1
if rc not in (0, 1) or (rc == 1 and failed == 0):
    failed += 1  # pytest could not collect or run (rc 2-5)
if skipped:
    print("  %s: %d skipped" % (label, skipped), file=sys.stderr)
print("%d %d %s" % (passed, failed, label))
EOF
}

for b in "${BUILDS[@]}"; do
  if [ "$b" = build-asan ]; then
    # Power cuts: 100 in the normal build, fewer under the sanitizers (the same code paths).
    export SEALMAIL_POWERCUT_CYCLES=30
    # -Werror here too (CI): the sanitizer build is warning-free as well.
    opts=(-Dwerror=$WERROR -Db_sanitize=address,undefined -Db_lundef=false)
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  else
    opts=(-Dwerror=$WERROR)
    unset ASAN_OPTIONS UBSAN_OPTIONS SEALMAIL_POWERCUT_CYCLES
  fi
  say "$b: meson setup and build"
  if ! setup_build "$b" "${opts[@]}"; then
    tail -20 "$LOGDIR/$b-setup.log" >&2
    say "$b: meson setup FAILED (log: ${LOGDIR#$ROOT/}/$b-setup.log)"
    record 0 1 "$b:build"
    continue
  fi
  if ! ninja -C "$b" -j "$JOBS" >"$LOGDIR/$b-ninja.log" 2>&1; then
    grep -E 'error|FAILED' "$LOGDIR/$b-ninja.log" | head -30 >&2
    say "$b: build FAILED (log: ${LOGDIR#$ROOT/}/$b-ninja.log)"
    record 0 1 "$b:build"
    continue
  fi

  say "$b: unit tests (meson test)"
  meson test -C "$b" --no-rebuild --suite unit --num-processes "$JOBS" --print-errorlogs \
    >"$LOGDIR/$b-unit.log" 2>&1
  grep -E '^ *[0-9]+/[0-9]+ ' "$LOGDIR/$b-unit.log" | grep -vE ' (OK|SKIP) ' | sort -u >&2 || true
  summarize_unit "$b" "$b:unit" >>"$LOGDIR/results"

  say "$b: integration tests (pytest)"
  # $JOBS test files at a time (pytest-xdist), each file on one worker with its own
  # servers: the tests wait on sockets far more than they compute.
  PAR=()
  if [ "$JOBS" -gt 1 ] && "$PY" -c 'import xdist' 2>/dev/null; then
    PAR=(-n "$JOBS" --dist loadfile)
  fi
  SEALMAIL_BUILD="$ROOT/$b" SEALMAIL_BUILD_ROOT="$ROOT/$b" SEALMAIL_SOURCE_ROOT="$ROOT" \
    "$PY" -m pytest "$ROOT/tests/integration" "${PAR[@]}" -q -p no:cacheprovider -rfE \
    --junitxml="$LOGDIR/$b-pytest.xml" ${PYTEST_ARGS:-} >"$LOGDIR/$b-pytest.log" 2>&1
  rc=$?
  if [ $rc -ne 0 ]; then
    # The short summary of failures, then pytest's last line.
    sed -n '/short test summary info/,$p' "$LOGDIR/$b-pytest.log" |
      grep -E '^(FAILED|ERROR) ' | cut -c1-220 | head -80 >&2
  fi
  tail -1 "$LOGDIR/$b-pytest.log" | sed "s/^/  $b:pytest: /" >&2
  summarize_pytest "$LOGDIR/$b-pytest.xml" $rc "$b:integration" >>"$LOGDIR/results"
done

# Fuzzing: every libFuzzer target in fuzz/ built with clang (build-fuzz, -Dfuzz=true) and run
# for FUZZ_SECONDS (default 8) from its seeds, $JOBS at a time, so a target that no longer
# builds or a parser that now crashes fails the run. One result line per target.
if [ -z "${SEALMAIL_SKIP_FUZZ:-}" ]; then
  say "build-fuzz: fuzz targets (clang, ${FUZZ_SECONDS:-8} s each)"
  fuzz_start=$SECONDS
  if ! command -v clang >/dev/null 2>&1; then
    say "build-fuzz: no clang (deploy/install-deps.sh installs it)"
    record 0 1 "fuzz:build"
  else
    FUZZ_SECONDS=${FUZZ_SECONDS:-8} FUZZ_JOBS=$JOBS "$ROOT/fuzz/run.sh" >"$LOGDIR/fuzz.log" 2>&1
    rc=$?
    grep -E '^FAIL ' "$LOGDIR/fuzz.log" >&2
    n=0
    while read -r verdict target _; do
      case $verdict in
        ok) record 1 0 "fuzz:$target" ;;
        FAIL) record 0 1 "fuzz:$target" ;;
        *) continue ;;
      esac
      n=$((n + 1))
    done <"$LOGDIR/fuzz.log"
    if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$LOGDIR/fuzz.log"; then
      # No per-target verdict explains the failure (build-fuzz could not be configured).
      tail -20 "$LOGDIR/fuzz.log" >&2
      record 0 1 "fuzz:build"
    fi
    say "build-fuzz: $n targets in $((SECONDS - fuzz_start)) s (log: ${LOGDIR#$ROOT/}/fuzz.log)"
  fi
fi

echo "---- results (logs in ${LOGDIR#$ROOT/}/) ----" >&2
total_p=0
total_f=0
while read -r p f label; do
  printf '  %-24s %5d passed, %d failed\n' "$label" "$p" "$f" >&2
  total_p=$((total_p + p))
  total_f=$((total_f + f))
done <"$LOGDIR/results"
echo "  ($((SECONDS - START)) s)" >&2
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
