#!/usr/bin/env bash
# Instructions per delivery of store_bench under callgrind, which counts user-space
# instructions reproducibly on a shared machine (kernel time is not in it: see the bench's
# CPU column for that). Runs the cell twice, with LOW and HIGH deliveries, and divides the
# difference by HIGH - LOW, so opening, schema creation and closing cancel out.
#
#   bench/store_callgrind.sh BUILD_DIR [PRODUCERS] [on|off] [LOW] [HIGH] [FLUSH_US]
set -eu
build=${1:?usage: $0 BUILD_DIR [PRODUCERS] [on|off] [LOW] [HIGH] [FLUSH_US]}
producers=${2:-64}
gc=${3:-on}
low=${4:-1000}
high=${5:-3000}
flush=${6:-0}
dir=$(mktemp -d "${TMPDIR:-/tmp}/store_callgrind.XXXXXX")
trap 'rm -rf "$dir"' EXIT

count_ir() {
	valgrind --tool=callgrind --callgrind-out-file="$dir/cg.$1" \
		"$build/bench/store_bench" --no-probe --flush-us "$flush" --producers "$producers" \
		--group-commit "$gc" --count "$1" "$dir" >"$dir/out.$1" 2>"$dir/err.$1"
	grep -E '^(summary|totals):' "$dir/cg.$1" | head -1 | awk '{print $2}'
}
ir_low=$(count_ir "$low")
ir_high=$(count_ir "$high")
echo "producers=$producers group_commit=$gc flush_us=$flush"
grep -E '^\| [0-9]' "$dir/out.$low" | sed "s/^/count=$low  /"
grep -E '^\| [0-9]' "$dir/out.$high" | sed "s/^/count=$high /"
awk -v a="$ir_low" -v b="$ir_high" -v n=$((high - low)) \
	'BEGIN { printf "instructions per delivery: %.0f\n", (b - a) / n }'
