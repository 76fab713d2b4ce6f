#!/usr/bin/env bash
# Loopback load test of the apitoken middleware: the same handler served bare
# and behind iss.Middleware, each loaded by wrk from a second process, the two
# modes alternating ROUNDS times. Prints requests/s and the server's CPU time
# per request (from /proc) of each run, the medians and the ratios (targets:
# >= 0.95).
#
# Loopback only, bounded in time: every server is killed after its run.
# On a 2-core machine the server and wrk share the cores, so the figures are
# those of a saturated box, not of the server alone; PIN=1 gives the server
# CPU 0 and wrk CPU 1 instead.
#
#   internal/bench/loadtest/run.sh                # 3 rounds x 2 modes x 10 s
#   ROUNDS=5 TOKENS=1000000 AUTH=basic internal/bench/loadtest/run.sh
#
# Needs wrk (apt-get install -y wrk). run_cache.sh beside it compares the
# middleware on memstore and on PostgreSQL with and without the cache.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
TOKENS=${TOKENS:-100000}
PORT=${PORT:-18089}
AUTH=${AUTH:-bearer} # bearer or basic
PIN=${PIN:-0}

cd "$(dirname "$0")/../../.."
command -v wrk >/dev/null || { echo "run.sh: wrk not found (apt-get install -y wrk)" >&2; exit 1; }
case $AUTH in bearer | basic) ;; *) echo "run.sh: AUTH must be bearer or basic" >&2; exit 2 ;; esac

tmp=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/loadtest" ./internal/bench/loadtest

server_cpu=() wrk_cpu=()
if [[ $PIN == 1 ]]; then server_cpu=(taskset -c 0) wrk_cpu=(taskset -c 1); fi

# cputicks PID: the CPU time the process used so far, in clock ticks.
cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run MODE: starts the server, loads it, prints requests/s and the server's
# CPU microseconds per request, stops the server.
run() {
	local mode=$1 line account secret rps c0 c1 reqs
	: >"$tmp/out"
	"${server_cpu[@]}" "$tmp/loadtest" -addr "127.0.0.1:$PORT" -mode "$mode" -tokens "$TOKENS" >"$tmp/out" 2>"$tmp/err" &
	pid=$!
	for _ in $(seq 600); do # up to 60 s to preload the store
		line=$(head -n1 "$tmp/out")
		[[ -n $line ]] && break
		kill -0 "$pid" 2>/dev/null || { cat "$tmp/err" >&2; exit 1; }
		sleep 0.1
	done
	[[ -n $line ]] || { echo "run.sh: server did not start" >&2; exit 1; }
	account=${line#account=}; account=${account%% *}
	secret=${line##*secret=}
	local auth=(-H "Authorization: Bearer $secret" -H "X-Account-ID: $account")
	if [[ $AUTH == basic ]]; then
		auth=(-H "Authorization: Basic $(printf '%s:%s' "$account" "$secret" | base64 -w0)")
	fi
	# The bare server gets the same request bytes: only the middleware differs.
	c0=$(cputicks "$pid")
	timeout 120 "${wrk_cpu[@]}" wrk -t2 -c50 -d"$DURATION" "${auth[@]}" "http://127.0.0.1:$PORT/" >"$tmp/wrk" 2>&1
	c1=$(cputicks "$pid")
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
	if grep -q 'Non-2xx' "$tmp/wrk"; then
		echo "run.sh: $mode answered non-2xx responses:" >&2; cat "$tmp/wrk" >&2; exit 1
	fi
	rps=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk")
	[[ -n $rps ]] || { cat "$tmp/wrk" >&2; exit 1; }
	reqs=$(awk '/requests in/ {print $1}' "$tmp/wrk")
	echo "$rps $(echo "($c1 - $c0) * 1000000 / $(getconf CLK_TCK) / $reqs" | bc -l)"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "loopback load test: wrk -t2 -c50 -d$DURATION, $TOKENS tokens, auth=$AUTH, pin=$PIN, $(nproc) cores, $ROUNDS rounds"
: >"$tmp/bare.txt"
: >"$tmp/mw.txt"
: >"$tmp/bare_cpu.txt"
: >"$tmp/mw_cpu.txt"
for round in $(seq "$ROUNDS"); do
	read -r b bc < <(run bare)
	read -r m mc < <(run middleware)
	echo "$b" >>"$tmp/bare.txt"
	echo "$m" >>"$tmp/mw.txt"
	echo "$bc" >>"$tmp/bare_cpu.txt"
	echo "$mc" >>"$tmp/mw_cpu.txt"
	printf 'round %d: bare %10.0f req/s %6.1f cpu-us/req  middleware %10.0f req/s %6.1f cpu-us/req  ratio %.3f, cpu bare/middleware %.3f\n' \
		"$round" "$b" "$bc" "$m" "$mc" "$(echo "$m / $b" | bc -l)" "$(echo "$bc / $mc" | bc -l)"
done
mb=$(median <"$tmp/bare.txt")
mm=$(median <"$tmp/mw.txt")
mbc=$(median <"$tmp/bare_cpu.txt")
mmc=$(median <"$tmp/mw_cpu.txt")
printf 'median:  bare %10.0f req/s %6.1f cpu-us/req  middleware %10.0f req/s %6.1f cpu-us/req\n' "$mb" "$mbc" "$mm" "$mmc"
printf 'ratios:  throughput middleware/bare %.3f, CPU per request bare/middleware %.3f (targets >= 0.95)\n' \
	"$(echo "$mm / $mb" | bc -l)" "$(echo "$mbc / $mmc" | bc -l)"
