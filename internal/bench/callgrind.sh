#!/usr/bin/env bash
# Instruction counts per operation of the hot-path benchmarks, under
# valgrind's callgrind: unlike times, they do not depend on what else runs on
# the machine, so they settle a ratio that a noisy timing cannot.
#
# Each case runs twice, with N1 and N2 iterations (-test.benchtime=Nx); the
# difference of the two totals divided by N2-N1 is the cost of one iteration,
# without the process start and the fixture. "beyond sha256" subtracts the
# instructions spent in SHA-256 block functions, which no design avoids
# (valgrind emulates a CPU without SHA-NI, so Go uses its AVX2 blocks there).
#
#   internal/bench/callgrind.sh                     # the Verify cases of the root package
#   CASES='BenchmarkMiddleware$/op=bare$ BenchmarkMiddleware$/op=bearer$' internal/bench/callgrind.sh
#   BIN=/tmp/old.test internal/bench/callgrind.sh   # a test binary built before a change
#
# Needs valgrind (apt-get install -y valgrind). The first case is the
# reference: every other row gives its ratio to it.
set -euo pipefail

N1=${N1:-2000}
N2=${N2:-42000}
PKG=${PKG:-.}
CASES=${CASES:-'BenchmarkVerify$/case=floor-sha256\+map$ BenchmarkVerify$/case=floor-hmac\+map$ BenchmarkVerify$/case=valid$ BenchmarkVerify$/case=floor-crc32$ BenchmarkVerify$/case=malformed-checksum$'}

cd "$(dirname "$0")/../.."
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind not found (apt-get install -y valgrind)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin=${BIN:-}
if [[ -z $bin ]]; then
	bin=$tmp/bench.test
	CGO_ENABLED=0 go test -c -o "$bin" "$PKG"
fi

# count CASE N: prints the total instructions and those in SHA-256 blocks.
count() {
	local out=$tmp/cg.out
	# Async preemption signals trip callgrind. One P keeps idle threads from
	# spinning, and no GC keeps the background mark workers out: both would
	# add instructions in proportion to wall time, not to the work. (So an
	# allocation counts what mallocgc costs, not its share of a collection.)
	GOGC=off GOMAXPROCS=1 GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$out" \
		"$bin" -test.run '^$' -test.bench "^$1" -test.benchtime "$2x" >/dev/null 2>"$tmp/err" ||
		{ cat "$tmp/err" >&2; exit 1; }
	local total block
	total=$(awk '/^summary:/ {print $2}' "$out")
	block=$(callgrind_annotate --auto=no --threshold=100 "$out" 2>/dev/null |
		awk '/sha256\.block/ {gsub(",", "", $1); s += $1} END {print s + 0}')
	echo "$total $block"
}

printf '%-50s %12s %12s %10s %10s\n' case 'instr/op' 'beyond-sha' ratio 'ratio-beyond'
ref= refb=
for c in $CASES; do
	read -r t1 b1 < <(count "$c" "$N1")
	read -r t2 b2 < <(count "$c" "$N2")
	per=$(((t2 - t1) / (N2 - N1)))
	beyond=$(((t2 - b2 - t1 + b1) / (N2 - N1)))
	[[ -z $ref ]] && ref=$per refb=$beyond
	awk -v c="${c//\\/}" -v p="$per" -v b="$beyond" -v r="$ref" -v rb="$refb" \
		'BEGIN {printf "%-50s %12d %12d %10.2f %10.2f\n", c, p, b, p / r, (rb > 0 ? b / rb : 0)}'
done
