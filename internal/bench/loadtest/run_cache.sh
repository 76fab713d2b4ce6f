#!/usr/bin/env bash
# Loopback load test of the middleware in front of three stores, one server
# at a time, the three modes alternating ROUNDS times:
#
#   memstore  the floor: tokens in memory
#   cache     sqlstore on PostgreSQL behind the Issuer's cache (WithCache)
#   nocache   sqlstore on PostgreSQL, every request a lookup
#
# wrk (a second process, hotcold.lua) sends 90% of the requests with one of
# HOT tokens and 10% with one of COLD others, each chosen at random. Every
# mode holds the same number of tokens, issued afresh each run. Prints
# requests/s, p50 and p99 latency, the store lookups per request and the CPU
# time per request (the server's, and the whole machine's) of each run, the
# medians, and the ratios cache/memstore (target >= 0.8) and cache/nocache
# (target >= 5).
#
# Loopback only, bounded in time: every server is stopped (SIGTERM) after its
# run. On PostgreSQL each server makes its tables under a fresh prefix and
# drops them when it stops. The server, wrk and PostgreSQL share the
# machine's cores: these are the figures of a saturated box. Last use is off
# (LAST_USE=0) unless given, so that only verification differs.
#
#   export APITOKEN_PG_DSN='postgres://postgres@127.0.0.1:5432/test?sslmode=disable'
#   internal/bench/loadtest/run_cache.sh                   # 3 rounds x 3 modes x 10 s
#   CACHE_SIZE=20000 ROUNDS=2 internal/bench/loadtest/run_cache.sh
#
# Needs wrk (apt-get install -y wrk).
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
HOT=${HOT:-100}
COLD=${COLD:-10000}
SHARE=${SHARE:-0.9}               # share of the requests that go to the hot tokens
TOKENS=${TOKENS:-$((HOT + COLD))} # tokens in each store; above HOT + COLD, the rest have no known secret
CACHE_SIZE=${CACHE_SIZE:-1000}    # entries; 10x the hot set by default, fewer than the tokens in use
CACHE_TTL=${CACHE_TTL:-1m}
LAST_USE=${LAST_USE:-0}
CONNS=${CONNS:-50}
PORT=${PORT:-18090}
: "${APITOKEN_PG_DSN:?set APITOKEN_PG_DSN to a PostgreSQL DSN}"

cd "$(dirname "$0")/../../.."
command -v wrk >/dev/null || { echo "run_cache.sh: wrk not found (apt-get install -y wrk)" >&2; exit 1; }

tmp=$(mktemp -d)
pid=
stop_server() {
	if [[ -n $pid ]]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; fi
}
cleanup() { stop_server; rm -rf "$tmp"; }
trap cleanup EXIT

go build -o "$tmp/loadtest" ./internal/bench/loadtest

# ms converts a wrk latency (123.45us, 1.23ms, 1.02s) to milliseconds.
ms() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /m$/) n *= 60000; else if (v ~ /s$/) n *= 1000; printf "%.3f", n }'; }

# busy prints the CPU time (jiffies) the whole machine has spent busy.
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }
hz=$(getconf CLK_TCK)

# run MODE: starts the server, loads it, stops it; prints "rps p50ms p99ms
# lookups/request server-µs/request machine-µs/request": CPU time per
# request of the server, and of the whole machine (server, wrk, PostgreSQL,
# and whatever else runs) during the wrk run.
run() {
	local mode=$1 line flags=()
	case $mode in
	memstore) flags=(-store memstore) ;;
	cache) flags=(-store postgres -cache -cache-size "$CACHE_SIZE" -cache-ttl "$CACHE_TTL") ;;
	nocache) flags=(-store postgres) ;;
	esac
	: >"$tmp/out"
	"$tmp/loadtest" -addr "127.0.0.1:$PORT" -mode middleware "${flags[@]}" -hot "$HOT" -cold "$COLD" -tokens "$TOKENS" \
		-last-use "$LAST_USE" -secrets "$tmp/secrets" >"$tmp/out" 2>"$tmp/err" &
	pid=$!
	line=
	for _ in $(seq 1200); do # up to 120 s to fill the store
		line=$(head -n1 "$tmp/out")
		[[ -n $line ]] && break
		kill -0 "$pid" 2>/dev/null || { cat "$tmp/err" >&2; exit 1; }
		sleep 0.1
	done
	[[ -n $line ]] || { echo "run_cache.sh: server did not start" >&2; exit 1; }
	local busy0 busy1
	busy0=$(busy)
	timeout 120 wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s internal/bench/loadtest/hotcold.lua \
		"http://127.0.0.1:$PORT/" -- "$tmp/secrets" "$HOT" "$SHARE" >"$tmp/wrk" 2>&1
	busy1=$(busy)
	stop_server
	if grep -q -e 'Non-2xx' -e 'Socket errors' "$tmp/wrk"; then
		echo "run_cache.sh: $mode: errors:" >&2; cat "$tmp/wrk" >&2; exit 1
	fi
	local rps p50 p99 reqs lookups cpu
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk")
	p50=$(ms "$(awk '$1 == "50%" {print $2}' "$tmp/wrk")")
	p99=$(ms "$(awk '$1 == "99%" {print $2}' "$tmp/wrk")")
	reqs=$(awk '/ requests in / {print $1}' "$tmp/wrk")
	lookups=$(sed -n 's/^lookups=//p' "$tmp/out")
	cpu=$(sed -n 's/^cpu_seconds=//p' "$tmp/out")
	[[ -n $rps && -n $reqs && -n $lookups && -n $cpu ]] || { cat "$tmp/wrk" "$tmp/out" "$tmp/err" >&2; exit 1; }
	echo "$rps $p50 $p99 $(echo "$lookups / $reqs" | bc -l) $(echo "$cpu * 1000000 / $reqs" | bc -l)" \
		"$(echo "($busy1 - $busy0) * 1000000 / $hz / $reqs" | bc -l)"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

modes=(memstore cache nocache)
echo "loopback load test: wrk -t2 -c$CONNS -d$DURATION, $HOT hot + $COLD cold tokens ($SHARE hot), $TOKENS in the store," \
	"cache $CACHE_SIZE entries / $CACHE_TTL, last use $LAST_USE, $(nproc) cores, $ROUNDS rounds"
for m in "${modes[@]}"; do : >"$tmp/$m.txt"; done
for round in $(seq "$ROUNDS"); do
	for m in "${modes[@]}"; do
		r=$(run "$m")
		echo "$r" >>"$tmp/$m.txt"
		read -r rps p50 p99 lpr scpu mcpu <<<"$r"
		printf 'round %d: %-8s %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  lookups/req %.4f  CPU µs/req: server %5.1f machine %5.1f\n' \
			"$round" "$m" "$rps" "$p50" "$p99" "$lpr" "$scpu" "$mcpu"
	done
done
declare -A med
for m in "${modes[@]}"; do
	for col in 1 2 3 4 5 6; do
		med[$m,$col]=$(awk -v c=$col '{print $c}' "$tmp/$m.txt" | median)
	done
	printf 'median:  %-8s %9.0f req/s  p50 %7.3f ms  p99 %7.3f ms  lookups/req %.4f  CPU µs/req: server %5.1f machine %5.1f\n' \
		"$m" "${med[$m,1]}" "${med[$m,2]}" "${med[$m,3]}" "${med[$m,4]}" "${med[$m,5]}" "${med[$m,6]}"
done
printf 'ratio of medians: cache/memstore %.3f (target >= 0.8), cache/nocache %.2f (target >= 5)\n' \
	"$(echo "${med[cache,1]} / ${med[memstore,1]}" | bc -l)" "$(echo "${med[cache,1]} / ${med[nocache,1]}" | bc -l)"
# The same per round (each round's three runs are close in time).
paste "$tmp/memstore.txt" "$tmp/cache.txt" "$tmp/nocache.txt" |
	awk '{ printf "round %d ratios: cache/memstore %.3f, cache/nocache %.2f\n", NR, $7 / $1, $7 / $13 }'
