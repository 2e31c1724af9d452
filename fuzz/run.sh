#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, -Dfuzz=true) in build-fuzz/ and runs each one for
# FUZZ_SECONDS seconds (default 20) from its seed corpus in fuzz/corpus/<target>/.
# New corpus entries go to build-fuzz/corpus/<target>/ (the checked-in seeds stay as
# they are); crashers to build-fuzz/artifacts/<target>/. Prints one line per target and
# exits 1 if any target crashed, leaked or timed out.
#   fuzz/run.sh                 every target
#   fuzz/run.sh smtp_parse ...  only these
set -u
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-20}
build=build-fuzz

if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" -Dfuzz=true -Dtests=false -Db_lundef=false >"$build.log" 2>&1 ||
		{ cat "$build.log"; exit 2; }
fi
ninja -C "$build" >"$build/ninja.log" 2>&1 || { cat "$build/ninja.log"; exit 2; }

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
	for f in fuzz/fuzz_*.c; do
		t=${f#fuzz/fuzz_}
		targets+=("${t%.c}")
	done
fi

failed=0
for t in "${targets[@]}"; do
	bin=$build/fuzz/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "FAIL $t: no binary $bin"
		failed=1
		continue
	fi
	mkdir -p "$build/corpus/$t" "$build/artifacts/$t"
	log=$build/artifacts/$t.log
	seeds=fuzz/corpus/$t
	[ -d "$seeds" ] || seeds=
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
		-print_final_stats=1 -artifact_prefix="$build/artifacts/$t/" \
		"$build/corpus/$t" $seeds >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
	if [ $rc -eq 0 ]; then
		printf 'ok   %-14s %10s runs  cov %s  (%ss)\n' "$t" "${execs:-?}" "${cov:-?}" "$seconds"
	else
		art=$(ls -t "$build/artifacts/$t/" 2>/dev/null | head -n 1)
		printf 'FAIL %-14s exit %d after %s runs: %s (log %s)\n' "$t" "$rc" "${execs:-?}" \
			"${art:+$build/artifacts/$t/$art}" "$log"
		failed=1
	fi
done
exit $failed
