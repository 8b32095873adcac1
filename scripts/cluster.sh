#!/usr/bin/env bash
# Start a local group of N hearsay peers for experiments, each in the
# background with --json output in its own log, on one shared bootstrap
# service. Stop them all with Ctrl-C (or: scripts/cluster.sh stop).
#
#   scripts/cluster.sh [N] [extra hearsay flags…]
#   N=5 by default; DIR (default: a new temp dir) holds the logs and data.
#
# Each peer reads its commands from a FIFO, so you can drive any of them:
#   echo 'hello from peer 2' > "$DIR/peer2.in"
#   echo '/members'          > "$DIR/peer2.in"
# and watch:  tail -f "$DIR"/peer*.jsonl
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "stop" ]; then
  pkill -f 'hearsay-cluster-peer' || true
  exit 0
fi
n=${1:-5}
shift || true
case "$n" in ''|*[!0-9]*) echo "usage: $0 [N] [hearsay flags…]" >&2; exit 2;; esac

dir=${DIR:-$(mktemp -d -t hearsay-cluster.XXXXXX)}
mkdir -p "$dir"
bin="$dir/hearsay"
go build -o "$bin" ./cmd/hearsay

port=${BOOTSTRAP_PORT:-18080}
"$bin" bootstrap serve --listen "127.0.0.1:$port" --db "$dir/bootstrap.db" >"$dir/bootstrap.log" 2>&1 &
pids=($!)
url="http://127.0.0.1:$port"
for _ in $(seq 50); do "$bin" bootstrap ping --bootstrap "$url" >/dev/null 2>&1 && break; sleep 0.1; done
# Every peer stays listed as a first contact in an experiment group.
"$bin" bootstrap config --bootstrap "$url" --max-peers "$n" >/dev/null

cleanup() {
  for i in $(seq "$n"); do echo /quit >"$dir/peer$i.in" 2>/dev/null & done
  sleep 1
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  echo "logs in $dir"
}
trap cleanup EXIT INT TERM

for i in $(seq "$n"); do
  mkfifo "$dir/peer$i.in"
  # exec -a names the process so 'stop' can find it; the FIFO is held open
  # read-write (<>) so a writer closing it is not end of input;
  # --keep-going keeps a peer running after a command of its FIFO fails.
  (exec -a hearsay-cluster-peer "$bin" --nick "peer$i" --bootstrap "$url" --profile local \
      --data-dir "$dir/peer$i" --json --keep-going "$@" <>"$dir/peer$i.in" >"$dir/peer$i.jsonl" 2>"$dir/peer$i.err") &
  pids+=($!)
done
echo "$n peers running; bootstrap $url; logs and FIFOs in $dir"
echo "drive one:  echo hello > $dir/peer1.in      watch:  tail -f $dir/peer*.jsonl"
wait
