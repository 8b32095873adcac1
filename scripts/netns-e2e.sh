#!/usr/bin/env bash
# End-to-end test of hearsay with every peer a separate process in its own
# network namespace. Needs root and iproute2 (ip); builds the binary with
# go unless HEARSAY_BIN is set.
#
#   scripts/netns-e2e.sh            # exit 0 when every check passed
#
# Topology: one namespace holds a Linux bridge (the "switch"); the
# bootstrap service host (198.18.0.1) and N peers (198.18.0.11, .12, …)
# each sit in their own namespace, joined to the bridge by a veth pair.
# 198.18.0.0/15 is the range reserved for network benchmarks (RFC 2544),
# so nothing here can collide with a real network. Each peer runs
#   hearsay --bind 198.18.0.1X:7946 --json --profile local --bootstrap http://198.18.0.1:8080
# and reads its commands from a FIFO.
#
# Scenario: all peers join; each sends messages to #lobby (causal), to a
# total-order room #ops and to a sequencer room #seq; the last peer's link
# is cut (its veth set down on the bridge), both sides send, the link comes
# back; the sequencer of #seq is killed with SIGKILL, the others send
# (another member must take over), it is restarted on its data directory
# and must catch up and still show its history; a final round of messages;
# then all quit. scripts/netnscheck checks the --json outputs: every live
# peer shows every sent message exactly once, each origin in seq order, and
# #ops and #seq in the same sequence everywhere.
#
# Environment: N (peers, default 4, at most 9), E2E_TIMEOUT (seconds per
# wait, default 60), KEEP=1 (keep the work directory even on success),
# HEARSAY_BIN (a prebuilt binary), E2E_DIR (work directory), E2E_PEER_FLAGS
# (extra flags for every peer, e.g. "--fault-drop 20% --fault-jitter 30ms"
# to run the whole scenario over lossy, reordering chat links).
# Namespaces are named hse2e-<pid>-…; leftovers of runs whose process is
# gone are removed at start, and this run's are removed on exit (trap).
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-4}
PEER_FLAGS=${E2E_PEER_FLAGS:-}
TIMEOUT=${E2E_TIMEOUT:-60}
case "$N" in [3-9]) ;; *) echo "N must be 3 to 9" >&2; exit 2 ;; esac
case "$TIMEOUT" in '' | *[!0-9]*) echo "E2E_TIMEOUT must be whole seconds" >&2; exit 2 ;; esac
if [ "$(id -u)" != 0 ]; then echo "netns-e2e: needs root (network namespaces)" >&2; exit 2; fi
command -v ip >/dev/null || { echo "netns-e2e: needs ip (iproute2)" >&2; exit 2; }

ID=$$
PREFIX="hse2e-$ID"
SW="$PREFIX-sw"
dir=${E2E_DIR:-$(mktemp -d -t hearsay-netns.XXXXXX)}
mkdir -p "$dir"
failed=1
declare -A pid # process name -> pid

log() { printf '%s netns-e2e: %s\n' "$(date +%H:%M:%S.%N | cut -c1-12)" "$*"; }
die() {
  log "FAIL: $*"
  diagnose
  exit 1
}

# --- cleanup ---------------------------------------------------------------

remove_namespaces() { # $1: name prefix
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$1" || true); do
    # Processes of a dead run still inside: end them before the namespace.
    for p in $(ip netns pids "$ns" 2>/dev/null || true); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
  done
}

remove_leftovers() {
  local ns other
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^hse2e-[0-9]*-' || true); do
    other=${ns#hse2e-}
    other=${other%%-*}
    if [ "$other" != "$ID" ] && ! kill -0 "$other" 2>/dev/null; then
      log "removing leftover namespace $ns"
      remove_namespaces "hse2e-$other-"
    fi
  done
}

cleanup() {
  local code=$?
  set +e
  for name in "${!pid[@]}"; do kill -TERM "${pid[$name]}" 2>/dev/null; done
  local deadline=$((SECONDS + 5))
  for name in "${!pid[@]}"; do
    while kill -0 "${pid[$name]}" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL "${pid[$name]}" 2>/dev/null
  done
  wait 2>/dev/null
  remove_namespaces "$PREFIX-"
  if [ "$failed" = 1 ] || [ "$code" != 0 ]; then
    log "outputs kept in $dir"
    for f in "$dir"/p*.err "$dir"/bootstrap.log; do
      [ -s "$f" ] && { echo "--- $f (tail)"; tail -n 5 "$f"; }
    done
  elif [ "${KEEP:-0}" = 1 ]; then
    log "outputs kept in $dir"
  else
    rm -rf "$dir"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

remove_leftovers

# --- build -----------------------------------------------------------------

bin=${HEARSAY_BIN:-}
if [ -z "$bin" ]; then
  bin="$dir/hearsay"
  log "building hearsay"
  go build -o "$bin" ./cmd/hearsay
fi
check="$dir/netnscheck"
go build -o "$check" ./scripts/netnscheck

# --- network ---------------------------------------------------------------

ip netns add "$SW"
ip -n "$SW" link add br0 type bridge
ip -n "$SW" link set br0 up
ip -n "$SW" link set lo up

# attach NAME ADDR: a namespace PREFIX-NAME with ADDR/15 on eth0, whose
# other end is the port NAME on the bridge.
attach() {
  local ns="$PREFIX-$1" port="$1"
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$ns" link add eth0 type veth peer name "$port" netns "$SW"
  ip -n "$ns" addr add "$2/15" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$SW" link set "$port" master br0
  ip -n "$SW" link set "$port" up
}

attach bs 198.18.0.1
for i in $(seq "$N"); do attach "p$i" "198.18.0.1$i"; done

# --- helpers ---------------------------------------------------------------

# diagnose: ask every live peer for /stats and print the per-room counts
# and what is held back, to tell a lost message from a held one.
diagnose() {
  local i name deadline
  for name in "${!pid[@]}"; do
    i=${name#p}
    [ "$name" != bs ] && kill -0 "${pid[$name]}" 2>/dev/null && say_try "$i" "/stats"
  done
  for name in "${!pid[@]}"; do
    i=${name#p}
    [ "$name" != bs ] || continue
    deadline=$((SECONDS + 3))
    while ! grep -qF 'HELD BACK' "$(out "$i")" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    echo "--- $name /stats (rooms)"
    grep -F 'HELD BACK' "$(out "$i")" 2>/dev/null | tail -n 1 | sed 's/.*\(ROOM  *MODE  *RECEIVED\)/\1/; s/\\n/\n/g; s/"}$//'
  done
}

# wait_until DESC CMD…: run CMD every 0.2 s until it succeeds, or fail
# after TIMEOUT seconds.
wait_until() {
  local desc=$1
  shift
  local deadline=$((SECONDS + TIMEOUT))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || die "timed out after ${TIMEOUT}s waiting for $desc"
    sleep 0.2
  done
}

# out I: the current --json output of peer I (its latest run).
declare -A run
declare -a refused # peer -> refusals send_sure retried in its current run
out() { echo "$dir/p$1.${run[$1]}.jsonl"; }
# all_out I: every run's output, oldest first, comma-separated.
all_out() {
  local r files=()
  for r in $(seq "${run[$1]}"); do files+=("$dir/p$1.$r.jsonl"); done
  (IFS=,; echo "${files[*]}")
}

# say I LINE: type LINE into peer I. Opening the FIFO blocks while nobody
# reads it (the peer died), hence the timeout.
say_try() { timeout 5 bash -c 'printf "%s\n" "$1" >"$2"' _ "$2" "$dir/p$1.in"; }
say() { say_try "$@" || die "p$1 does not read its input (did it exit? see $dir/p$1.err)"; }

# send I ROOM TEXT: peer I sends TEXT to ROOM (its current room) and the
# message is recorded as sent.
send() {
  say "$1" "$3"
  printf '%s\t%s\n' "$2" "$3" >>"$dir/sent.tsv"
}

# shows I ROOM TEXT: peer I has shown message TEXT in ROOM (any run).
shows() {
  local r
  for r in $(seq "${run[$1]}"); do
    grep -F '"type":"message"' "$dir/p$1.$r.jsonl" 2>/dev/null | grep -F "\"room\":\"$2\"" |
      grep -qF "\"text\":\"$3\"" && return 0
  done
  return 1
}

# send_sure I ROOM TEXT: like send, for a peer that may refuse a message
# for a moment (a total-order room right after a restart waits for its
# members): resend after each refusal until peer I shows the message.
send_sure() {
  local i=$1 room=$2 text=$3 errs deadline=$((SECONDS + TIMEOUT))
  while :; do
    errs=$(grep -cF "message not sent to #$room" "$(out "$i")" || true)
    say "$i" "$text"
    until shows "$i" "$room" "$text"; do
      [ "$(grep -cF "message not sent to #$room" "$(out "$i")" || true)" -gt "$errs" ] && break
      [ $SECONDS -lt $deadline ] || die "timed out after ${TIMEOUT}s waiting for p$i to send $text to #$room"
      sleep 0.2
    done
    shows "$i" "$room" "$text" && break
    # A refusal is a failed command: with --keep-going the peer's run
    # ends with status 1, which the exit check below expects.
    refused[$i]=$((${refused[$i]:-0} + 1))
    [ $SECONDS -lt $deadline ] || die "p$i kept refusing $text to #$room: $(grep -F "message not sent to #$room" "$(out "$i")" | tail -n 1)"
    sleep 0.5
  done
  printf '%s\t%s\n' "$room" "$text" >>"$dir/sent.tsv"
}

# everyone_shows ROOM TEXT PEERS…
everyone_shows() {
  local room=$1 text=$2 p
  shift 2
  for p in "$@"; do shows "$p" "$room" "$text" || return 1; done
}

# has I PATTERN: the current output of peer I has a line with PATTERN.
has() { grep -qF -- "$2" "$(out "$1")" 2>/dev/null; }

# member_alive I NICK / member_down I NICK: the last membership event
# about NICK in peer I's current run says it is up / down.
member_alive() {
  local last
  last=$(grep -E "\"type\":\"(join|leave|failed)\"" "$(out "$1")" 2>/dev/null | grep -F "\"from\":\"$2\"" | tail -n 1)
  [[ "$last" == *'"type":"join"'* ]]
}
member_down() {
  local last
  last=$(grep -E "\"type\":\"(join|leave|failed)\"" "$(out "$1")" 2>/dev/null | grep -F "\"from\":\"$2\"" | tail -n 1)
  [[ "$last" == *'"type":"failed"'* || "$last" == *'"type":"leave"'* ]]
}
all_alive() { # PEERS…: each sees every other as joined
  local i j
  for i in "$@"; do for j in "$@"; do
    [ "$i" = "$j" ] || member_alive "$i" "p$j" || return 1
  done; done
}

start_peer() { # I
  local i=$1
  run[$i]=$((${run[$i]:-0} + 1))
  refused[$i]=0 # send_sure's refusals in this run
  [ -p "$dir/p$i.in" ] || mkfifo "$dir/p$i.in"
  # The FIFO is opened read-write (<>) so that a writer closing it is not
  # end of input for the peer. --keep-going: a command that fails (a send
  # during churn) is an event to check, not the end of the peer.
  ip netns exec "$PREFIX-p$i" "$bin" --nick "p$i" --data-dir "$dir/p$i.data" --bind "198.18.0.1$i:7946" \
    --json --profile local --bootstrap http://198.18.0.1:8080 --color never --keep-going $PEER_FLAGS \
    <>"$dir/p$i.in" >"$(out "$i")" 2>>"$dir/p$i.err" &
  pid[p$i]=$!
}

# --- bootstrap service -----------------------------------------------------

: >"$dir/sent.tsv"
log "starting the bootstrap service at 198.18.0.1:8080 and $N peers${PEER_FLAGS:+ with $PEER_FLAGS}"
# The service is not on loopback, so hearsay does not send the local
# generated admin token to it: the script makes one of its own and passes
# it to serve and config. XDG_DATA_HOME keeps every generated file in $dir.
export XDG_DATA_HOME="$dir/xdg"
admin_token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
ip netns exec "$PREFIX-bs" "$bin" bootstrap serve --listen 198.18.0.1:8080 --db "$dir/bootstrap.db" \
  --admin-token "$admin_token" \
  >"$dir/bootstrap.log" 2>&1 &
pid[bs]=$!
bs_up() { ip netns exec "$PREFIX-p1" "$bin" bootstrap ping --bootstrap http://198.18.0.1:8080 --timeout 1s >/dev/null 2>&1; }
wait_until "the bootstrap service" bs_up
# Every peer stays a first contact, so any of them can bring others back.
ip netns exec "$PREFIX-p1" "$bin" bootstrap config --bootstrap http://198.18.0.1:8080 --admin-token "$admin_token" --max-peers "$N" >/dev/null

# --- 1. join ---------------------------------------------------------------

peers=$(seq "$N")
start_peer 1
wait_until "p1 to register" has 1 "registered as a first contact"
for i in $(seq 2 "$N"); do start_peer "$i"; done
# shellcheck disable=SC2086
wait_until "every peer to see every other" all_alive $peers
log "1. $N peers joined"

# --- 2. messages in two rooms ---------------------------------------------

# room_members I ROOM: the member count of ROOM in peer I's last /rooms.
room_members() {
  grep -F '"type":"system"' "$(out "$1")" | grep -oE "[* ] #$2 +[a-z]+ +[0-9]+ +[0-9]+ +[0-9]+ +[0-9]+" |
    tail -n 1 | awk '{print $NF}'
}
room_full() { # ROOM COUNT PEERS…: each peer's /rooms lists COUNT members in ROOM
  local room=$1 want=$2 i ok=0
  shift 2
  for i in "$@"; do
    [ "$(room_members "$i" "$room")" = "$want" ] || { ok=1; say "$i" "/rooms"; }
  done
  return $ok
}
# room_known I ROOM MODE: peer I's last /rooms lists ROOM with MODE.
room_known() {
  grep -F '"type":"system"' "$(out "$1")" | grep -F 'ROOM ' | tail -n 1 | grep -qE "[* ] #$2 +$3 "
}
all_know() { # ROOM MODE PEERS…: every peer has heard of ROOM (gossip)
  local room=$1 mode=$2 i ok=0
  shift 2
  for i in "$@"; do room_known "$i" "$room" "$mode" || { ok=1; say "$i" "/rooms"; }; done
  return $ok
}
# One peer creates each room; the others join once gossip has told them
# about it, as users do. (Peers that create the same room at once would
# each start it: two sequencers for #seq.) The victim of step 4 creates
# #seq, so it is its sequencer and its crash makes another member take over.
victim=2
say 1 "/join #ops --order total"
say "$victim" "/join #seq --order sequencer"
# shellcheck disable=SC2086
wait_until "every peer to hear of #ops and #seq" eval 'all_know ops total $peers && all_know seq sequencer $peers'
for i in $peers; do
  [ "$i" = 1 ] || say "$i" "/join #ops --order total"
  [ "$i" = "$victim" ] || say "$i" "/join #seq --order sequencer"
done
# shellcheck disable=SC2086
wait_until "#ops and #seq to have all $N members" eval 'room_full ops "$N" $peers && room_full seq "$N" $peers'
for i in $peers; do say "$i" "/switch #lobby"; done
for m in 1 2 3; do
  for i in $peers; do send "$i" lobby "lobby p$i m$m"; done
done
for i in $peers; do
  say "$i" "/switch #ops"
  send "$i" ops "ops p$i"
  say "$i" "/switch #seq"
  send "$i" seq "seq p$i"
  say "$i" "/switch #lobby"
done
# shellcheck disable=SC2086
wait_until "every peer to show every message" everyone_shows lobby "lobby p$N m3" $peers
# shellcheck disable=SC2086
wait_until "every peer to show every #ops message" everyone_shows ops "ops p$N" $peers
all_shown() { # PEERS…: each shows every message sent so far
  local room text
  while IFS=$'\t' read -r room text; do
    everyone_shows "$room" "$text" "$@" || return 1
  done <"$dir/sent.tsv"
}
# shellcheck disable=SC2086
wait_until "every message everywhere" all_shown $peers
log "2. $(wc -l <"$dir/sent.tsv") messages in #lobby, #ops (total) and #seq (sequencer) reached every peer"

# --- 3. cut a link and heal it --------------------------------------------

cut=$N
ip -n "$SW" link set "p$cut" down
log "3. cut p$cut's link"
wait_until "p1 to declare p$cut failed" member_down 1 "p$cut"
wait_until "p$cut to declare p1 failed" member_down "$cut" p1
send 1 lobby "during the cut from p1"
send "$cut" lobby "during the cut from p$cut"
wait_until "p2 to show p1's message" shows 2 lobby "during the cut from p1"
ip -n "$SW" link set "p$cut" up
log "3. healed p$cut's link"
# shellcheck disable=SC2086
wait_until "the group to merge again" all_alive $peers
# shellcheck disable=SC2086
wait_until "every message everywhere after the heal" all_shown $peers
log "3. after the heal every peer has every message"

# --- 4. kill a peer and restart it ----------------------------------------

others=$(echo "$peers" | grep -vx "$victim")
say "$victim" "from p$victim before the crash"
printf '%s\t%s\n' lobby "from p$victim before the crash" >>"$dir/sent.tsv"
# shellcheck disable=SC2086
wait_until "p$victim's last message to arrive" everyone_shows lobby "from p$victim before the crash" $peers
kill -KILL "${pid[p$victim]}"
wait "${pid[p$victim]}" 2>/dev/null || true
unset "pid[p$victim]"
log "4. killed p$victim (SIGKILL)"
wait_until "p1 to declare p$victim failed" member_down 1 "p$victim"
for i in $others; do
  send "$i" lobby "while p$victim is down from p$i"
  # p$victim was #seq's sequencer: these need the next one.
  say "$i" "/switch #seq"
  send "$i" seq "seq while p$victim is down from p$i"
  say "$i" "/switch #lobby"
done
# shellcheck disable=SC2086
wait_until "#seq to go on without its sequencer" everyone_shows seq "seq while p$victim is down from p$N" $others
start_peer "$victim"
log "4. restarted p$victim on its data directory"
# shellcheck disable=SC2086
wait_until "p$victim to rejoin" all_alive $peers
# shellcheck disable=SC2086
wait_until "p$victim to catch up" all_shown $peers
say "$victim" "/history 200"
wait_until "p$victim's history to include its first-run messages" has "$victim" "\"type\":\"history\""
grep -F '"type":"history"' "$(out "$victim")" | grep -qF '"text":"lobby p1 m1"' ||
  die "p$victim's /history after the restart lacks messages from before the crash"
log "4. p$victim caught up and kept its history"

# --- 5. last round, quit, check ------------------------------------------

for i in $peers; do
  send "$i" lobby "last from p$i"
  # The restarted peer is still in #ops and #seq (room membership is
  # persisted).
  say "$i" "/switch #ops"
  send_sure "$i" ops "last ops from p$i"
  say "$i" "/switch #seq"
  send_sure "$i" seq "last seq from p$i"
  say "$i" "/switch #lobby"
done
# shellcheck disable=SC2086
wait_until "the last round everywhere" all_shown $peers
for i in $peers; do say "$i" "/quit"; done
for i in $peers; do
  deadline=$((SECONDS + TIMEOUT))
  while kill -0 "${pid[p$i]}" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      # A Go program prints every goroutine's stack on SIGQUIT.
      kill -QUIT "${pid[p$i]}" 2>/dev/null
      sleep 1
      die "p$i did not exit within ${TIMEOUT}s after /quit; its goroutines are in $dir/p$i.err"
    fi
    sleep 0.2
  done
  status=0
  wait "${pid[p$i]}" 2>/dev/null || status=$?
  if [ "$status" != 0 ]; then
    # Exit status 1 with exactly the failed commands send_sure retried
    # ("input: N of M commands failed", --keep-going) is expected.
    failed=$(grep -o 'input: [0-9]* of [0-9]* commands failed' "$dir/p$i.err" | tail -n 1 | cut -d' ' -f2)
    if [ "$status" != 1 ] || [ "${failed:-none}" != "${refused[$i]:-0}" ]; then
      die "p$i exited with status $status (${failed:-no} failed commands, ${refused[$i]:-0} expected refusals; see $dir/p$i.err)"
    fi
  fi
  unset "pid[p$i]"
done
args=()
for i in $peers; do args+=(-peer "p$i=$(all_out "$i")"); done
"$check" -sent "$dir/sent.tsv" -total ops -total seq "${args[@]}" || die "the outputs break the guarantees"
failed=0
log "PASS"
