#!/usr/bin/env bash
# The comparison suite: weft against xargs, GNU parallel, rust-parallel, Python multiprocessing,
# rayon, and Celery and RQ (the broker).
#
#   benches/run.sh
#
# Installs hyperfine, GNU parallel, curl, GNU time and redis-server with apt-get, and Celery and
# RQ with pip, when they are missing; builds weft in release mode, runs every comparison with repetitions after a warm-up, writes
# benches/RESULTS.md and prints its summary. Needs Python 3. Takes about 15 minutes on 2 cores
# (plus the first build); every step has a time limit. Timings need a quiet machine, so the
# suite is not part of CI. Exits non-zero if a step failed (its rows read "not measured").
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

say() { printf '\n== %s\n' "$*" >&2; }
die() {
	printf 'run.sh: %s\n' "$*" >&2
	exit 1
}

missing=()
command -v hyperfine >/dev/null || missing+=(hyperfine)
command -v parallel >/dev/null || missing+=(parallel)
command -v curl >/dev/null || missing+=(curl)
command -v redis-server >/dev/null || missing+=(redis-server)
[ -x /usr/bin/time ] || missing+=(time)
if ((${#missing[@]})); then
	say "installing ${missing[*]}"
	sudo=
	[ "$(id -u)" -eq 0 ] || sudo=sudo
	$sudo apt-get update -qq
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v python3 >/dev/null || die "python3 is needed for the Python side of the comparisons"
# Celery and RQ, the peers of the broker comparison (section 11), from PyPI.
python3 -c 'import celery, rq, redis, packaging' 2>/dev/null || {
	say "installing celery, rq and redis (pip)"
	python3 -m pip install --quiet celery rq redis packaging
}
parallel --version 2>/dev/null | grep -q 'GNU parallel' ||
	die "'parallel' is not GNU parallel (moreutils has one of that name): install the parallel package"

# rust-parallel, the Rust peer for commands: installed once with cargo into target/bench-tools.
rust_parallel=$(command -v rust-parallel || true)
if [ -z "$rust_parallel" ]; then
	rust_parallel=$PWD/target/bench-tools/bin/rust-parallel
	if [ ! -x "$rust_parallel" ]; then
		say "installing rust-parallel 1.24.0 (cargo install, into target/bench-tools)"
		cargo install --quiet --locked rust-parallel --version 1.24.0 --root target/bench-tools
	fi
fi

say "building weft in release mode"
artifacts=$(cargo build --release --locked --bins --bench engine --bench floor --bench broker --bench rayon --message-format=json-render-diagnostics)
executable() {
	python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == sys.argv[1] \
            and sys.argv[2] in m["target"]["kind"] and m.get("executable"):
        print(m["executable"])' "$1" "$2" <<<"$artifacts"
}
weft=$(executable weft bin)
engine=$(executable engine bench)
floor=$(executable floor bench)
broker=$(executable broker bench)
rayon=$(executable rayon bench)
{ [ -x "$weft" ] && [ -x "$engine" ] && [ -x "$floor" ] && [ -x "$broker" ] && [ -x "$rayon" ]; } ||
	die "the build did not produce the weft binary and the engine, floor, broker and rayon benches"
t_build=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-bench.XXXXXX")
res=$work/results
mkdir "$res"
server=
running=
redis=
cleanup() {
	for pid in $running $server $redis; do kill "$pid" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

failed=()
# step NAME SECONDS COMMAND...: one step under a time limit; a failure is noted, not fatal.
# It runs in the background so that Ctrl-C interrupts `wait` and the trap stops it at once.
step() {
	local name=$1 limit=$2
	shift 2
	timeout -k 10 "$limit" "$@" <&0 &
	running=$!
	if ! wait "$running"; then
		printf 'run.sh: %s failed or ran past %s s\n' "$name" "$limit" >&2
		failed+=("$name")
	fi
	running=
}
# hf NAME RUNS COMMAND...: hyperfine, one warm-up run, exported for the report.
hf() {
	local name=$1 runs=$2
	shift 2
	step "$name" 300 hyperfine --style basic --warmup 1 --runs "$runs" \
		--export-json "$res/hf-$name.json" "$@"
}

say "library: start-up, no-op rates, round trip, CPU scaling, payloads (weft)"
step engine 300 "$engine" startup noop noop.thread_fn roundtrip cpu payload > >(tee "$res/engine.txt")
say "library: rayon, the Rust anchor for threads (1 ms CPU jobs, tiny jobs)"
WEFT_BENCH_RAYON_REPS=15 step rayon 600 "$rayon" cpu tiny > >(tee "$res/rayon.txt")
say "library: the floor under comparison 3 (no engine: a clock read and an outcome per job)"
step floor 120 "$floor" clock thread process > >(tee "$res/floor.txt")
say "library: memory (weft, in a fresh process)"
step memory 120 "$engine" memory > >(tee "$res/memory.txt")
say "library: Python multiprocessing"
step python 300 python3 benches/py_pool.py > >(tee "$res/python.txt")
# The tiny-task rates move with other work on a shared host for seconds at a time: two more
# rounds of each side in turn, pooled with the runs above by report.py.
for round in 2 3; do
	say "library: comparison 3, round $round of 3"
	step "noop.$round" 120 "$engine" noop noop.thread_fn > >(tee -a "$res/rounds.txt")
	step "floor.$round" 120 "$floor" thread process > >(tee -a "$res/rounds.txt")
	step "py.map.$round" 120 python3 benches/py_pool.py map > >(tee -a "$res/rounds.txt")
done

say "1. command overhead: 2,000 x true"
seq 2000 >"$work/n2000"
hf true.weft 10 "$weft -j2 true < $work/n2000"
hf true.xargs 10 "xargs -P2 -n1 true < $work/n2000"
hf true.parallel 3 "parallel --will-cite -j2 true < $work/n2000"
hf true.rust-parallel 10 "$rust_parallel -j2 true < $work/n2000"

say "2. hashing 5,000 small files"
mkdir "$work/files"
python3 - "$work/files" >"$work/files.txt" <<'EOF'
import os, random, sys
random.seed(5)
for i in range(5000):
    path = os.path.join(sys.argv[1], f"f{i:05}")
    with open(path, "wb") as f:
        f.write(random.randbytes(random.randint(1024, 8192)))
    print(path)
EOF
files=$work/files.txt
hf sha.weft 10 "$weft --task sha256 < $files"
hf sha.parallel 3 "parallel --will-cite sha256sum < $files"
hf sha.xargs1 5 "xargs -P2 -n1 sha256sum < $files"
hf sha.xargs500 10 "xargs -P2 -n500 sha256sum < $files"
{ timeout 60 "$weft" --task sha256 <"$files" || true; } | sort >"$work/weft.sums"
xargs -n500 sha256sum <"$files" | sort >"$work/coreutils.sums"
if cmp -s "$work/weft.sums" "$work/coreutils.sums"; then
	echo "sha256.identical yes ($(wc -l <"$work/weft.sums") lines)" >>"$res/checks.txt"
else
	differ=$(comm -3 "$work/weft.sums" "$work/coreutils.sums" | wc -l)
	echo "sha256.identical no ($differ lines differ)" >>"$res/checks.txt"
	failed+=("sha256 output")
fi

say "5. start-up end to end"
hf sum.weft 50 -N "$weft --task sum ::: 1..10"
[ "$("$weft" --task sum ::: 1..10)" = 45 ] || failed+=("sum output")

say "8. 2,000 HTTP GETs from a loopback server, 32 at a time"
"$engine" serve 20 600 >"$work/server.out" &
server=$!
for _ in $(seq 100); do
	grep -q '^listening' "$work/server.out" && break
	sleep 0.1
done
addr=$(awk '/^listening/ { print $2 }' "$work/server.out")
[ -n "$addr" ] || die "the loopback HTTP server did not start"
seq 2000 | sed "s|^|http://$addr/|" >"$work/urls.txt"
# Loopback only: no proxy may see these requests (nothing later needs one).
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
hf fetch.weft 10 "$weft --task fetch -j32 < $work/urls.txt"
hf fetch.xargs 5 "xargs -P32 -n1 curl -s < $work/urls.txt"
hf fetch.parallel 3 "parallel --will-cite -j32 curl -s < $work/urls.txt"
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
server=

say "9. coordinator memory of the weft command over 1,000,000 records"
seq 1000000 >"$work/n1m"
for backend in process thread; do
	# GNU time, not a Python harness: a child forked from Python would count Python's pages
	# in its peak until it execs.
	rm -f "$work/maxrss"
	step "memory.cli.$backend" 120 /usr/bin/time -f %M -o "$work/maxrss" \
		"$weft" --task noop --backend "$backend" <"$work/n1m" >/dev/null
	if [ -s "$work/maxrss" ]; then
		awk -v b="$backend" '/^[0-9]+$/ { mb = $1 * 1024 / 1e6 }
			END { if (mb) printf "memory.cli.%s.peak MB median=%.6f min=%.6f max=%.6f n=1 jobs=1000000\n", b, mb, mb, mb }' \
			"$work/maxrss" >>"$res/memory.txt"
	fi
done

say "10. --pipe and --pipe-part: 259 MB (seq 30000000) through wc -l, 2 jobs at a time"
seq 30000000 >"$work/s30m"
hf pipe.weft 5 "$weft --pipe -j2 wc -l < $work/s30m"
hf pipe.parallel 3 "parallel --will-cite --pipe -j2 wc -l < $work/s30m"
# From a pipe too: weft cannot move the blocks from a file to the jobs' pipes then.
hf pipe.stream.weft 5 "cat $work/s30m | $weft --pipe -j2 wc -l"
hf pipe.stream.parallel 3 "cat $work/s30m | parallel --will-cite --pipe -j2 wc -l"
hf pipepart.weft 5 "$weft --pipe-part -a $work/s30m -j2 wc -l"
hf pipepart.parallel 3 "parallel --will-cite --pipe-part -a $work/s30m -j2 wc -l"
rm -f "$work/s30m"

say "11. the broker: weft, Celery and RQ on one loopback Redis, two workers each"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" >"$work/redis.log" 2>&1 &
redis=$!
url=redis://127.0.0.1:$port/0
for _ in $(seq 100); do
	python3 -c 'import redis, sys; redis.Redis.from_url(sys.argv[1]).ping()' "$url" 2>/dev/null && break
	sleep 0.1
done
for round in 1 2 3; do
	step "broker.noop.$round" 120 "$broker" 1000000 2 0 "$url" > >(tee -a "$res/broker.txt")
	step "broker.sleep.$round" 120 "$broker" 400 2 10 "$url" > >(tee -a "$res/broker.txt")
done
step peers 900 python3 benches/broker_peers.py "$url" > >(tee "$res/peers.txt")
kill "$redis" 2>/dev/null || true
wait "$redis" 2>/dev/null || true
redis=

t1=$(date +%s)
{
	echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "cores: $(nproc)"
	echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src bin Cargo.toml || echo '+changes')"
	echo "build: $((t_build - t0)) s"
	echo "suite: $(((t1 - t_build) / 60)) min $(((t1 - t_build) % 60)) s"
	echo "load_before: $load_before"
	echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "tools: $(hyperfine --version), GNU parallel $(parallel --version | awk 'NR == 1 { print $3 }'), $("$rust_parallel" --version), $(xargs --version | head -1), $(curl --version | awk 'NR == 1 { print $1, $2 }'), Python $(python3 -c 'import platform; print(platform.python_version())')"
} >"$res/meta.txt"

say "results"
python3 benches/report.py "$res" benches/RESULTS.md
echo
echo "Written to benches/RESULTS.md in $(((t1 - t0) / 60)) min $(((t1 - t0) % 60)) s."
if ((${#failed[@]})); then
	die "failed steps: ${failed[*]}"
fi
