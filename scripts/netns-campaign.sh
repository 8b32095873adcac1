#!/usr/bin/env bash
# Randomized fault campaign (issue 13) with every hearsay peer a separate
# process in its own network namespace, on the topology of
# scripts/netns-e2e.sh (a bridge namespace; the bootstrap service at
# 198.18.0.1, peers at 198.18.0.11, .12, …, each behind a veth pair). Needs
# root and iproute2; builds the binary unless HEARSAY_BIN is set.
#
#   scripts/netns-campaign.sh                       # one round, random seed
#   CAMPAIGN_SEED=42 CAMPAIGN_ROUNDS=5 scripts/netns-campaign.sh
#
# A round: N peers join, one room per ordering mode (#lobby causal, #f
# fifo, #t total, #s sequencer, each created by one peer and joined by the
# others, as users do), then STEPS random steps of a seeded nemesis, each
# a fault, a workload (every running peer sends one message to a random
# room) and the repair:
#   kill9      kill -9 a peer, restart it on its data directory
#   term       SIGTERM a peer (it leaves), restart it
#   isolate    set a peer's veth down (symmetric partition from everyone)
#   split      blackhole routes both ways between two halves of the group
#   oneway     blackhole routes from one peer to another (one-way cut)
#   lossy      /fault drop 20% and /fault jitter 30ms on one or two peers
#   bootstrap  kill the bootstrap service and serve it again (same db)
# Then every fault is repaired, every peer runs, and after a quiet period
# each peer sends a final message to every room (liveness). The check
# (scripts/netnscheck): every peer shows every acknowledged message (one
# its sender showed) exactly once over its runs, each origin in seq order,
# and #t and #s in the same sequence everywhere. A failing round prints
# its seed ("FAIL round R seed S"), keeps its outputs and fails the script
# (after the remaining rounds). Round R uses seed CAMPAIGN_SEED+R-1, so
# CAMPAIGN_SEED=S CAMPAIGN_ROUNDS=1 repeats a failing round's schedule (the
# processes' interleaving is not repeatable, the schedule is).
#
# Environment: CAMPAIGN_SEED (default random), CAMPAIGN_ROUNDS (1),
# CAMPAIGN_STEPS (6), CAMPAIGN_ACTIONS (the nemesis's choices, default all
# seven above), N (peers, 4 to 7, default 4; "random": drawn per round from
# its seed), E2E_TIMEOUT (seconds
# per wait, default 60), CAMPAIGN_DIR (work directory), KEEP=1, HEARSAY_BIN.
# Namespaces are named hscmp-<pid>-…; leftovers of dead runs are removed at
# start, this run's on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

NSPEC=${N:-4}
ROUNDS=${CAMPAIGN_ROUNDS:-1}
ACTIONS=${CAMPAIGN_ACTIONS:-kill9 term isolate split oneway lossy bootstrap}
STEPS=${CAMPAIGN_STEPS:-6}
TIMEOUT=${E2E_TIMEOUT:-60}
SEED=${CAMPAIGN_SEED:-$(((RANDOM << 15) | RANDOM))}
case "$NSPEC" in [4-7] | random) ;; *) echo "N must be 4 to 7, or random" >&2; exit 2 ;; esac
for v in "$ROUNDS" "$STEPS" "$TIMEOUT" "$SEED"; do
  case "$v" in '' | *[!0-9]*) echo "CAMPAIGN_ROUNDS, CAMPAIGN_STEPS, E2E_TIMEOUT and CAMPAIGN_SEED are whole numbers" >&2; exit 2 ;; esac
done
for a in $ACTIONS; do
  case "$a" in kill9 | term | isolate | split | oneway | lossy | bootstrap) ;; *) echo "unknown action $a in CAMPAIGN_ACTIONS" >&2; exit 2 ;; esac
done
nactions=$(echo $ACTIONS | wc -w)
[ "$nactions" -gt 0 ] || { echo "CAMPAIGN_ACTIONS is empty" >&2; exit 2; }
if [ "$(id -u)" != 0 ]; then echo "netns-campaign: needs root (network namespaces)" >&2; exit 2; fi
command -v ip >/dev/null || { echo "netns-campaign: needs ip (iproute2)" >&2; exit 2; }

ID=$$
top=${CAMPAIGN_DIR:-$(mktemp -d -t hearsay-campaign.XXXXXX)}
mkdir -p "$top"
declare -A pid # process name -> pid (this round)
failures=()

log() { printf '%s campaign: %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$*"; }

remove_namespaces() { # $1: name prefix
  local ns p
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$1" || true); do
    for p in $(ip netns pids "$ns" 2>/dev/null || true); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

remove_leftovers() {
  local ns other
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^hscmp-[0-9]*-' || true); do
    other=${ns#hscmp-}
    other=${other%%-*}
    if [ "$other" != "$ID" ] && ! kill -0 "$other" 2>/dev/null; then
      log "removing leftover namespace $ns"
      remove_namespaces "hscmp-$other-"
    fi
  done
}

stop_all() {
  local name deadline
  for name in "${!pid[@]}"; do kill -TERM "${pid[$name]}" 2>/dev/null || true; done
  deadline=$((SECONDS + 5))
  for name in "${!pid[@]}"; do
    while kill -0 "${pid[$name]}" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL "${pid[$name]}" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  for name in "${!pid[@]}"; do unset "pid[$name]"; done
}

cleanup() {
  local code=$?
  set +e
  stop_all
  remove_namespaces "hscmp-$ID-"
  if [ ${#failures[@]} -gt 0 ] || [ "$code" != 0 ] || [ "${KEEP:-0}" = 1 ]; then
    log "outputs kept in $top"
  else
    rm -rf "$top"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

remove_leftovers

bin=${HEARSAY_BIN:-}
if [ -z "$bin" ]; then
  bin="$top/hearsay"
  log "building hearsay"
  go build -o "$bin" ./cmd/hearsay
fi
check="$top/netnscheck"
go build -o "$check" ./scripts/netnscheck

# rnd N: a number in [0, N) from the round's seeded sequence, in REPLY.
# (Called in the main shell only: a subshell would not advance it.)
rnd() { REPLY=$((RANDOM % $1)); }

# --- one round ---------------------------------------------------------------

# Everything below uses the round's globals: PREFIX, SW, dir, run, up.
declare -A run up

out() { echo "$dir/p$1.${run[$1]}.jsonl"; }
all_out() {
  local r files=()
  for r in $(seq "${run[$1]}"); do files+=("$dir/p$1.$r.jsonl"); done
  (IFS=,; echo "${files[*]}")
}
say_try() { timeout 5 bash -c 'printf "%s\n" "$1" >"$2"' _ "$2" "$dir/p$1.in"; }
say() { say_try "$@" || { log "p$1 does not read its input (see $dir/p$1.err)"; return 1; }; }
shows() { # I ROOM TEXT: peer I has shown TEXT in ROOM (any run)
  local r
  for r in $(seq "${run[$1]}"); do
    grep -F '"type":"message"' "$dir/p$1.$r.jsonl" 2>/dev/null | grep -F "\"room\":\"$2\"" |
      grep -qF "\"text\":\"$3\"" && return 0
  done
  return 1
}
has() { grep -qF -- "$2" "$(out "$1")" 2>/dev/null; }
member_alive() {
  local last
  last=$(grep -E "\"type\":\"(join|leave|failed)\"" "$(out "$1")" 2>/dev/null | grep -F "\"from\":\"$2\"" | tail -n 1)
  [[ "$last" == *'"type":"join"'* ]]
}
all_alive() {
  local i j
  for i in $peers; do for j in $peers; do
    [ "$i" = "$j" ] || member_alive "$i" "p$j" || return 1
  done; done
}
# wait_for DESC CMD…: poll CMD every 0.2 s; 1 after TIMEOUT seconds.
wait_for() {
  local desc=$1 deadline=$((SECONDS + TIMEOUT))
  shift
  until "$@"; do
    if [ $SECONDS -ge $deadline ]; then
      log "timed out after ${TIMEOUT}s waiting for $desc"
      return 1
    fi
    sleep 0.2
  done
}

attach() { # NAME ADDR
  local ns="$PREFIX-$1"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" link add eth0 type veth peer name "$1" netns "$SW"
  ip -n "$ns" addr add "$2/15" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$SW" link set "$1" master br0
  ip -n "$SW" link set "$1" up
}

start_bootstrap() {
  ip netns exec "$PREFIX-bs" "$bin" bootstrap serve --listen 198.18.0.1:8080 --db "$dir/bootstrap.db" \
    --admin-token "$admin_token" >>"$dir/bootstrap.log" 2>&1 &
  pid[bs]=$!
}
bs_up() { ip netns exec "$PREFIX-p1" "$bin" bootstrap ping --bootstrap http://198.18.0.1:8080 --timeout 1s >/dev/null 2>&1; }

start_peer() { # I
  local i=$1
  run[$i]=$((${run[$i]:-0} + 1))
  [ -p "$dir/p$i.in" ] || mkfifo "$dir/p$i.in"
  ip netns exec "$PREFIX-p$i" "$bin" --nick "p$i" --data-dir "$dir/p$i.data" --bind "198.18.0.1$i:7946" \
    --json --profile local --bootstrap http://198.18.0.1:8080 --color never --keep-going --faults \
    <>"$dir/p$i.in" >"$(out "$i")" 2>>"$dir/p$i.err" &
  pid[p$i]=$!
  up[$i]=1
}

stop_peer() { # I SIGNAL
  local i=$1 p=${pid[p$1]} deadline=$((SECONDS + 10))
  kill "-$2" "$p" 2>/dev/null || true
  while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  unset "pid[p$i]"
  up[$i]=0
}

# The rooms: name and mode; #lobby exists already (causal).
rooms="lobby f t s"
declare -A mode=([f]=fifo [t]=total [s]=sequencer)

room_known() { grep -F '"type":"system"' "$(out "$1")" | grep -F 'ROOM ' | tail -n 1 | grep -qE "[* ] #$2 +$3 "; }
all_know() {
  local i ok=0
  for i in $peers; do room_known "$i" "$1" "$2" || { ok=1; say "$i" "/rooms" || true; }; done
  return $ok
}
room_members() {
  grep -F '"type":"system"' "$(out "$1")" | grep -oE "[* ] #$2 +[a-z]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+" |
    tail -n 1 | awk '{print $NF}'
}
room_full() {
  local i ok=0
  for i in $peers; do
    [ "$(room_members "$i" "$1")" = "$N" ] || { ok=1; say "$i" "/rooms" || true; }
  done
  return $ok
}

# try_send I ROOM TEXT: peer I sends TEXT to ROOM; the message counts as
# acknowledged (sent.tsv) at the end if its sender showed it.
try_send() {
  say "$1" "/switch #$2" && say "$1" "$3" && printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$dir/attempts.tsv"
}

# send_sure I ROOM TEXT: resend after each refusal (a total-order room
# right after a restart waits for its members) until peer I shows TEXT.
send_sure() {
  local i=$1 room=$2 text=$3 errs deadline=$((SECONDS + TIMEOUT))
  say "$i" "/switch #$room" || return 1
  while :; do
    errs=$(grep -cF "message not sent to #$room" "$(out "$i")" || true)
    say "$i" "$text" || return 1
    until shows "$i" "$room" "$text"; do
      [ "$(grep -cF "message not sent to #$room" "$(out "$i")" || true)" -gt "$errs" ] && break
      [ $SECONDS -lt $deadline ] || { log "p$i never showed its $text in #$room"; return 1; }
      sleep 0.2
    done
    shows "$i" "$room" "$text" && break
    [ $SECONDS -lt $deadline ] || { log "p$i kept refusing $text to #$room"; return 1; }
    sleep 0.5
  done
  printf '%s\t%s\t%s\n' "$i" "$room" "$text" >>"$dir/attempts.tsv"
}

all_shown() { # every acknowledged message so far, on every peer
  local room text
  while IFS=$'\t' read -r room text; do
    for i in $peers; do shows "$i" "$room" "$text" || return 1; done
  done <"$dir/sent.tsv"
}

# acknowledged: sent.tsv from attempts.tsv, the messages their sender showed.
acknowledged() {
  local i room text
  : >"$dir/sent.tsv"
  while IFS=$'\t' read -r i room text; do
    shows "$i" "$room" "$text" && printf '%s\t%s\n' "$room" "$text" >>"$dir/sent.tsv"
  done <"$dir/attempts.tsv"
  return 0
}

running() { # the peers up now
  local i list=""
  for i in $peers; do [ "${up[$i]}" = 1 ] && list="$list $i"; done
  echo "$list"
}

# step R S: one nemesis step: a fault, the workload, the repair.
step() {
  local r=$1 s=$2 action i j k half fault="" victims
  rnd "$nactions"
  action=$(echo $ACTIONS | cut -d' ' -f$((REPLY + 1)))
  rnd "$N"; i=$((REPLY + 1))
  rnd $((N - 1)); j=$((REPLY + 1)); [ "$j" -ge "$i" ] && j=$((j + 1))
  case $action in
    kill9) stop_peer "$i" KILL; fault="killed p$i (SIGKILL)" ;;
    term) stop_peer "$i" TERM; fault="stopped p$i (SIGTERM)" ;;
    isolate) ip -n "$SW" link set "p$i" down; fault="isolated p$i (link down)" ;;
    split)
      rnd $((N - 1)); half=$((REPLY + 1)) # peers 1..half | half+1..N
      for k in $(seq "$half"); do
        for j in $(seq $((half + 1)) "$N"); do
          ip -n "$PREFIX-p$k" route add blackhole "198.18.0.1$j/32"
          ip -n "$PREFIX-p$j" route add blackhole "198.18.0.1$k/32"
        done
      done
      fault="split 1-$half | $((half + 1))-$N" ;;
    oneway) ip -n "$PREFIX-p$i" route add blackhole "198.18.0.1$j/32"; fault="cut p$i -> p$j (one way)" ;;
    lossy)
      victims="$i"
      rnd 2; [ "$REPLY" = 1 ] && victims="$i $j"
      for k in $victims; do say "$k" "/fault drop 20%" && say "$k" "/fault jitter 30ms" || true; done
      fault="20% loss and 30ms jitter on p${victims// /, p}" ;;
    bootstrap) kill -KILL "${pid[bs]}"; wait "${pid[bs]}" 2>/dev/null || true; fault="killed the bootstrap service" ;;
  esac
  log "round $r step $s: $fault"
  echo "step $s: $fault" >>"$dir/schedule.txt"
  for k in $(running); do
    rnd 4
    try_send "$k" "$(echo $rooms | cut -d' ' -f$((REPLY + 1)))" "r$r s$s p$k" || true
  done
  rnd 4
  sleep "$((REPLY + 1))" # the fault lasts 1 to 4 s, plus the time the workload took
  case $action in
    kill9 | term) start_peer "$i" ;;
    isolate) ip -n "$SW" link set "p$i" up ;;
    split | oneway) for k in $peers; do ip -n "$PREFIX-p$k" route flush type blackhole 2>/dev/null || true; done ;;
    lossy) for k in $victims; do say "$k" "/fault drop 0" && say "$k" "/fault jitter 0" || true; done ;;
    bootstrap) start_bootstrap ;;
  esac
}

# round R SEED: one round; 0 when the checks passed.
round() {
  local r=$1 seed=$2 i s ok=0 room
  RANDOM=$seed
  N=$NSPEC
  if [ "$N" = random ]; then rnd 4; N=$((REPLY + 4)); fi
  PREFIX="hscmp-$ID-$r"
  SW="$PREFIX-sw"
  dir="$top/round$r"
  mkdir -p "$dir"
  run=() up=()
  peers=$(seq "$N")
  : >"$dir/attempts.tsv"
  : >"$dir/sent.tsv"
  echo "seed $seed" >"$dir/schedule.txt"
  log "round $r: seed $seed, $N peers, $STEPS steps"

  ip netns add "$SW"
  ip -n "$SW" link add br0 type bridge
  ip -n "$SW" link set br0 up
  attach bs 198.18.0.1
  for i in $peers; do attach "p$i" "198.18.0.1$i"; done
  XDG_DATA_HOME="$dir/xdg"
  export XDG_DATA_HOME
  admin_token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  start_bootstrap
  wait_for "the bootstrap service" bs_up || return 1
  ip netns exec "$PREFIX-p1" "$bin" bootstrap config --bootstrap http://198.18.0.1:8080 \
    --admin-token "$admin_token" --max-peers "$N" >/dev/null

  start_peer 1
  wait_for "p1 to register" has 1 "registered as a first contact" || return 1
  for i in $(seq 2 "$N"); do start_peer "$i"; done
  wait_for "every peer to see every other" all_alive || return 1
  say 1 "/join #t --order total"
  say 2 "/join #s --order sequencer"
  say 3 "/join #f --order fifo"
  wait_for "every peer to hear of the rooms" eval 'all_know t total && all_know s sequencer && all_know f fifo' || return 1
  for i in $peers; do
    [ "$i" = 1 ] || say "$i" "/join #t --order total"
    [ "$i" = 2 ] || say "$i" "/join #s --order sequencer"
    [ "$i" = 3 ] || say "$i" "/join #f --order fifo"
  done
  wait_for "the rooms to have all $N members" eval 'room_full t && room_full s && room_full f' || return 1

  for s in $(seq "$STEPS"); do step "$r" "$s"; done

  # Repair is done by each step; wait for the group, then the quiet
  # period: every acknowledged message everywhere, then a final message
  # from every peer in every room (liveness: nothing is held back).
  wait_for "the group to be whole again" all_alive || ok=1
  acknowledged
  wait_for "every acknowledged message everywhere" all_shown || ok=1
  for i in $peers; do
    for room in $rooms; do send_sure "$i" "$room" "final r$r p$i $room" || ok=1; done
  done
  acknowledged
  wait_for "the final round everywhere" all_shown || ok=1
  log "round $r: $(wc -l <"$dir/sent.tsv") acknowledged messages of $(wc -l <"$dir/attempts.tsv") attempts"

  for i in $peers; do say_try "$i" "/quit" || true; done
  for i in $peers; do stop_peer "$i" TERM; done
  local args=()
  for i in $peers; do args+=(-peer "p$i=$(all_out "$i")"); done
  "$check" -sent "$dir/sent.tsv" -total t -total s "${args[@]}" >"$dir/check.txt" 2>&1 || ok=1
  tail -n 20 "$dir/check.txt"
  return $ok
}

log "seed $SEED, $ROUNDS round(s) of $STEPS steps, N=$NSPEC peers, actions: $ACTIONS"
for r in $(seq "$ROUNDS"); do
  seed=$((SEED + r - 1))
  if round "$r" "$seed"; then
    log "round $r passed (seed $seed)"
  else
    log "FAIL round $r seed $seed (repeat: CAMPAIGN_SEED=$seed CAMPAIGN_ROUNDS=1; schedule and outputs in $top/round$r)"
    failures+=("$seed")
  fi
  stop_all
  remove_namespaces "$PREFIX-"
done
if [ ${#failures[@]} -gt 0 ]; then
  log "FAIL: ${#failures[@]} of $ROUNDS round(s) failed, seeds ${failures[*]}"
  exit 1
fi
log "PASS: $ROUNDS round(s), seeds $SEED to $((SEED + ROUNDS - 1))"
