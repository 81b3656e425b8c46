#!/usr/bin/env bash
# Profiles the gateway under smtp-source load, for performance work:
#   scripts/profile.sh [MESSAGES] [CONCURRENCY] [BYTES] [PROFILE]
# It builds the daemon and starts it on loopback ports 2625-2627 with
# smtp-sink as the internal server. Then it sends the messages and prints
# the rate and the daemon's CPU per message. With PROFILE, the daemon
# writes a CPU profile there (read it with `go tool pprof -top PROFILE`).
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-4000} conc=${2:-10} size=${3:-5120} profile=${4:-}

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/lambgate" ./appliance/cmd/lambgate
mkdir "$work/data"
cat > "$work/data/lambgate.toml" <<SETTINGS
hostname = "lambgate.example.test"
[inbound]
listen = ["127.0.0.1:2625"]
max_connections = 200
max_connections_per_ip = 100
spf = false
[domains]
relay = ["example.test"]
[internal]
server = "127.0.0.1:2626"
source_address = "127.0.0.1"
max_connections = 20
[bounce]
resolver = "127.0.0.1:9"
require_spf_pass = false
[admin]
listen = "127.0.0.1:2627"
SETTINGS

smtp-sink -u nobody 127.0.0.1:2626 1024 &
pids+=($!)
args=(-data "$work/data")
if [[ -n $profile ]]; then args+=(-cpuprofile "$(realpath -m "$profile")"); fi
"$work/lambgate" "${args[@]}" > "$work/log" 2>&1 &
gw=$!
pids=("$gw" "${pids[@]}")
for _ in $(seq 50); do
  grep -q 'smtpd listening' "$work/log" && break
  sleep 0.1
done

ticks() { awk '{print $14 + $15}' "/proc/$gw/stat"; }
t0=$(date +%s%N) c0=$(ticks)
smtp-source -s "$conc" -m "$n" -l "$size" -f bench@example.org -t bench@example.test 127.0.0.1:2625
t1=$(date +%s%N) c1=$(ticks)
# Let the queue drain before the daemon stops, so that the profile covers
# the relay as well.
for _ in $(seq 100); do
  [[ $(grep -c 'msg=delivered' "$work/log" || true) -ge $n ]] && break
  sleep 0.1
done
kill "$gw"
wait "$gw" || true
awk -v n="$n" -v ns=$((t1 - t0)) -v cpu=$((c1 - c0)) 'BEGIN {
  printf "%d messages: %.0f msg/s, %.3f ms CPU per message\n", n, n / (ns / 1e9), cpu * 10 / n
}'
echo "relayed: $(grep -c 'msg=delivered' "$work/log" || true)"
