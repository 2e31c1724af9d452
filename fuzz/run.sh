#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -Dfuzz=true) in build-fuzz/ and runs each one for
# FUZZ_SECONDS seconds (default 20) from its seed corpus in fuzz/corpus/<target>/,
# FUZZ_JOBS targets at a time (default 1).
# New corpus entries go to build-fuzz/corpus/<target>/ (the checked-in seeds stay as
# they are); crashers to build-fuzz/artifacts/<target>/. Prints one line per target,
# "ok   <target> ..." or "FAIL <target> ...", and exits 1 if any target did not build,
# crashed, leaked or timed out (2 when build-fuzz cannot be configured).
#   fuzz/run.sh                 every target
#   fuzz/run.sh smtp_parse ...  only these
set -u
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
build=build-fuzz

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for f in fuzz/fuzz_*.c; do
		t=${f#fuzz/fuzz_}
		[ "$t" = session.c ] && continue # fuzz_session.c: the session targets' driver
		targets+=("${t%.c}")
	done
fi

if [ ! -f "$build/build.ninja" ]; then
	# The log goes inside the build folder, which .gitignore covers.
	mkdir -p "$build"
	CC=clang meson setup "$build" -Dfuzz=true -Dtests=false -Db_lundef=false \
		>"$build/setup.log" 2>&1 || { cat "$build/setup.log"; exit 2; }
fi

# Only the fuzz binaries (and the libraries they link), not sealmaild and the tools: the
# build is part of the time budget in tests/run.sh. A fuzz_*.c file that meson.build does
# not list is a target that never builds: reported, not skipped.
declare -A broken
bins=()
# Regenerates build.ninja first when a meson.build changed, so new targets are known.
ninja -C "$build" build.ninja >"$build/ninja.log" 2>&1 || { cat "$build/ninja.log"; exit 2; }
for t in "${targets[@]}"; do
	if ninja -C "$build" -t query "fuzz/fuzz_$t" >/dev/null 2>&1; then
		bins+=("fuzz/fuzz_$t")
	else
		broken[$t]="not a target in fuzz/meson.build"
	fi
done
if [ ${#bins[@]} -gt 0 ] && ! ninja -C "$build" -k 0 "${bins[@]}" >"$build/ninja.log" 2>&1; then
	grep -E 'error|FAILED|undefined reference' "$build/ninja.log" | head -n 40
	# -k 0 built what it could; a target ninja still has work for did not build.
	for t in "${targets[@]}"; do
		[ -n "${broken[$t]:-}" ] && continue
		if ! ninja -C "$build" -n "fuzz/fuzz_$t" 2>/dev/null | grep -q 'no work to do'; then
			broken[$t]="did not build (log $build/ninja.log)"
		fi
	done
fi

# One target: prints its line and returns 1 when it failed.
run_one() {
	local t=$1 bin=$build/fuzz/fuzz_$1
	if [ -n "${broken[$t]:-}" ]; then
		printf 'FAIL %-14s %s\n' "$t" "${broken[$t]}"
		return 1
	fi
	if [ ! -x "$bin" ]; then
		printf 'FAIL %-14s no binary %s\n' "$t" "$bin"
		return 1
	fi
	mkdir -p "$build/corpus/$t" "$build/artifacts/$t"
	local log=$build/artifacts/$t.log seeds=fuzz/corpus/$t
	[ -d "$seeds" ] || seeds=
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
		-print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" \
		"$build/corpus/$t" $seeds >"$log" 2>&1
	local rc=$? execs cov art
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
	if [ $rc -eq 0 ]; then
		printf 'ok   %-14s %10s runs  cov %s  (%ss)\n' "$t" "${execs:-?}" "${cov:-?}" "$seconds"
		return 0
	fi
	art=$(ls -t "$build/artifacts/$t/" 2>/dev/null | head -n 1)
	printf 'FAIL %-14s exit %d after %s runs: %s (log %s)\n' "$t" "$rc" "${execs:-?}" \
		"${art:+$build/artifacts/$t/$art}" "$log"
	return 1
}

# FUZZ_JOBS targets at a time (default 1); each prints its line when it ends.
jobs_max=${FUZZ_JOBS:-1}
pids=()
for t in "${targets[@]}"; do
	while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
		wait -n
	done
	run_one "$t" &
	pids+=($!)
done
failed=0
for p in "${pids[@]}"; do
	wait "$p" || failed=1
done
exit $failed
