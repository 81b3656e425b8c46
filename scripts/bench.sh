#!/usr/bin/env bash
# Runs the benchmarks and writes docs/benchmarks.md: smtp-source into
# Lambgate and into Postfix as a relay (both to one smtp-sink, durable
# queues, three runs each), then the packages' Go benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "bench: relay comparison (a few minutes)" >&2
go test ./e2e -run '^$' -bench 'RelayVsPostfix' -benchtime 2000x -count 3 -timeout 30m \
  | tee "$out/relay.txt" >&2

echo "bench: gateway with and without the bundled plugins" >&2
go test ./e2e -run '^$' -bench 'GatewayPlugins' -benchtime 4000x -count 5 -timeout 30m \
  | tee "$out/plugins.txt" >&2

echo "bench: package benchmarks" >&2
go test ./appliance/... ./plugins/... -run '^$' -bench . -benchmem -benchtime 1s -count 1 -timeout 20m \
  | tee "$out/units.txt" >&2

{
  echo "# Benchmarks"
  echo
  echo "Written by \`make bench\` (scripts/bench.sh) on $(date -u +%Y-%m-%d)."
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"
  echo "$(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), $(go version | cut -d' ' -f3)."
  echo "Other work may share these cores, so compare ratios from one run rather"
  echo "than absolute rates across runs."
  echo
  echo "## Relay throughput against Postfix"
  echo
  echo "smtp-source (one message per connection, 2,000 messages a run, median of"
  echo "three runs) into each system under test, which relays to one smtp-sink."
  echo "A run's time ends when smtp-sink has received its last message, so a"
  echo "system pays for its own relay backlog. Both spools are durable: Postfix"
  echo "syncs each queue file, Lambgate syncs before every 250. CPU is user"
  echo "plus system time of the system's processes (for Postfix the master and"
  echo "every service it ran); peak RSS is the highest sum of resident memory"
  echo "sampled every 20 ms."
  echo
  go run ./internal/benchreport relay < "$out/relay.txt"
  echo
  echo "Reading the figures: CPU comes from /proc in 10 ms ticks, so a"
  echo "figure is exact to about 0.01 ms per message over 2,000 messages."
  echo "Postfix's peak RSS adds up each process's resident memory, which"
  echo "counts the pages its processes share once per process, so it"
  echo "overstates what Postfix needs; Lambgate is one process. The targets"
  echo "for the gateway are 3x Postfix's rate at concurrency 10 and 50 with"
  echo "5 KB messages, 1.5x with 100 KB, at most 0.5 ms of CPU per 5 KB"
  echo "message and a peak RSS under 100 MB."
  echo
  echo "## Cost of the bundled plugins"
  echo
  echo "smtp-source at concurrency 50 with 5 KB messages (4,000 a run, median of"
  echo "five) into the gateway with no plugins and with the five bundled plugins"
  echo "(DNSBL, SPF, header rules, attachments, rate limit), relaying to smtp-sink."
  echo "The DNS lookups go to a local test server that lists nobody. Each"
  echo "gateway is fresh and first relays 1,000 unmeasured messages, because"
  echo "plugin instances are created on demand during the first messages."
  echo
  go run ./internal/benchreport plugins < "$out/plugins.txt"
  echo
  echo "## Package benchmarks"
  echo
  echo '```'
  grep -E '^(Benchmark|pkg:)' "$out/units.txt"
  echo '```'
} > docs/benchmarks.md.new
mv docs/benchmarks.md.new docs/benchmarks.md
echo "bench: wrote docs/benchmarks.md" >&2
