#!/usr/bin/env bash
# bench/run.sh: Hindsight's ingest side by side with a bare decoder and
# with Alertmanager, on this machine, in one run; then the Go benchmarks.
#
# For each of R rounds it starts every target on a free loopback port,
# loads it with bench/ingestbench (the same alerts for all), stops it by
# its PID, and finally prints the medians over the rounds and writes them
# as JSON to bench/results/<UTC time>.json. docs/performance.md explains
# the numbers and has one real run.
#
# Targets, in this order in every round:
#   bare               bench/bareserver: decodes the webhook JSON, answers 200
#   alertmanager       Debian's prometheus-alertmanager, POST /api/v2/alerts
#                      (skipped, with a note, when it is not installed)
#   hindsight          hindsight serve, default durable sync (fsync before ack)
#   hindsight-relaxed  hindsight serve with nats: {sync_interval: 1s}
# and, only when named in --targets, two that tell where the time goes:
#   hindsight-tmpfs        the durable default with its data directory on
#                          /dev/shm, where fsync costs next to nothing
#   hindsight-ingest-only  relaxed sync, --roles ingest: no correlator
#                          competing for the cores
#   hindsight-durable-ingest-only  the durable default, --roles ingest: what
#                          ingest alone does with a fsync before each answer
#
# Usage: bench/run.sh [flags]   (bench/run.sh -h lists them)
set -euo pipefail
cd "$(dirname "$0")/.."

runs=3 duration=10 warmup=3 connections=32 alerts=10 services=50 repeat=0
targets="bare alertmanager hindsight hindsight-relaxed"
ingest=1 gobench=1 count=6 benchpkgs="" rebuild=0 profile=0

usage() {
  cat <<'EOF'
Usage: bench/run.sh [flags]

  -r, --runs N           rounds of every target (default 3); medians over them
  -d, --duration S       seconds measured per target and round (default 10)
  -w, --warmup S         seconds of load before measuring (default 3)
  -c, --connections N    keep-alive connections (default 32)
  -a, --alerts N         alerts per request (default 10)
      --services N       services the alerts spread over (default 50)
      --repeat-ratio F   fraction of requests resending the previous one (default 0)
      --targets "LIST"   of: bare alertmanager hindsight hindsight-relaxed
                         (the default), hindsight-tmpfs hindsight-ingest-only
                         hindsight-durable-ingest-only
      --profile          run Hindsight as bench/profserve and keep a CPU profile
                         of each measured window (bench/results/<time>-<target>-r<N>.cpu.pb.gz)
      --no-ingest        skip the side-by-side ingest runs
      --no-go-bench      skip the Go benchmarks
      --count N          go test -count for the Go benchmarks (default 6, the fewest benchstat gives a confidence interval for)
      --bench-pkgs "P"   packages for the Go benchmarks (default: every package with one)
      --rebuild N        also time `hindsight rebuild` over N generated events
                         (TestRebuildSpeed; prints events/s)
  -h, --help             this text

Needs Go; Alertmanager comes from Debian's prometheus-alertmanager package
(apt-get install prometheus-alertmanager) and is skipped without it.
EOF
}

while [ $# -gt 0 ]; do
  case "$1" in
    -r|--runs) runs=$2; shift 2 ;;
    -d|--duration) duration=$2; shift 2 ;;
    -w|--warmup) warmup=$2; shift 2 ;;
    -c|--connections) connections=$2; shift 2 ;;
    -a|--alerts) alerts=$2; shift 2 ;;
    --services) services=$2; shift 2 ;;
    --repeat-ratio) repeat=$2; shift 2 ;;
    --targets) targets=$2; shift 2 ;;
    --profile) profile=1; shift ;;
    --no-ingest) ingest=0; shift ;;
    --no-go-bench) gobench=0; shift ;;
    --count) count=$2; shift 2 ;;
    --bench-pkgs) benchpkgs=$2; shift 2 ;;
    --rebuild) rebuild=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown flag $1" >&2; usage >&2; exit 2 ;;
  esac
done
for v in runs duration connections alerts services count; do
  case "${!v}" in ''|*[!0-9]*|0) echo "run.sh: --$v must be a whole number, 1 or more" >&2; exit 2 ;; esac
done
for t in $targets; do
  case "$t" in bare|alertmanager|hindsight|hindsight-relaxed|hindsight-tmpfs|hindsight-ingest-only|hindsight-durable-ingest-only) ;; *) echo "run.sh: unknown target $t" >&2; exit 2 ;; esac
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=bench/results
mkdir -p "$results"
work=$(mktemp -d "${TMPDIR:-/tmp}/hindsight-bench.XXXXXX")
bin=$work/bin
pids=() tmpfs_dirs=()

# Stop what this script started, by PID, and remove the scratch space.
cleanup() {
  for p in "${pids[@]}"; do
    if kill -0 "$p" 2>/dev/null; then kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; fi
  done
  rm -rf "$work" "${tmpfs_dirs[@]}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '== %s\n' "$*" >&2; }

# free_port prints a loopback port nothing listens on.
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "run.sh: no free port found" >&2; return 1
}

am=$(command -v prometheus-alertmanager || true)
am_version=none
if [ -n "$am" ]; then am_version=$("$am" --version 2>&1 | sed -n 1p); fi

# Machine and versions, for the report.
nproc_=$(nproc)
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | sed -n 1p)
go_version=$(go version)
nats_version=$(go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then commit="$commit (modified)"; fi
log "machine: $nproc_ cores, ${cpu_model:-unknown CPU}, $(uname -r); $go_version"
log "nats-server $nats_version (go.mod); Alertmanager: $am_version; commit $commit"
log "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

# start_target LABEL ROUND: starts the target, sets pid, url, shape, pprof_url.
start_target() {
  local label=$1 round=$2 port data
  port=$(free_port)
  url=http://127.0.0.1:$port pprof_url=
  data=$work/data-$label-$round
  if [ "$label" = hindsight-tmpfs ]; then
    if [ ! -d /dev/shm ]; then echo "run.sh: hindsight-tmpfs needs /dev/shm" >&2; return 1; fi
    data=$(mktemp -d /dev/shm/hindsight-bench.XXXXXX)
    tmpfs_dirs+=("$data")
  fi
  target_data=$data
  mkdir -p "$data"
  case "$label" in
    bare)
      shape=bare
      "$bin/bareserver" --listen "127.0.0.1:$port" 2>"$work/$label-$round.log" &
      ;;
    alertmanager)
      shape=alertmanager
      printf 'route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n' >"$data/alertmanager.yml"
      "$am" --config.file="$data/alertmanager.yml" --storage.path="$data" \
        --web.listen-address="127.0.0.1:$port" --cluster.listen-address= \
        --log.level=warn 2>"$work/$label-$round.log" &
      ;;
    hindsight*)
      shape=hindsight
      local cfg=()
      case "$label" in
        hindsight-relaxed|hindsight-ingest-only)
          printf 'nats:\n  sync_interval: 1s\n' >"$data/hindsight.yml"
          cfg=(--config "$data/hindsight.yml")
          ;;
      esac
      case "$label" in *ingest-only) cfg+=(--roles ingest) ;; esac
      if [ "$profile" = 1 ]; then
        local pport
        pport=$(free_port)
        pprof_url=http://127.0.0.1:$pport
        "$bin/profserve" --listen "127.0.0.1:$port" --data-dir "$data/state" --pprof "127.0.0.1:$pport" \
          "${cfg[@]}" 2>"$work/$label-$round.log" &
      else
        "$bin/hindsight" serve --listen "127.0.0.1:$port" --data-dir "$data/state" --log-level warn \
          "${cfg[@]}" 2>"$work/$label-$round.log" &
      fi
      ;;
  esac
  pid=$!
  pids+=("$pid")
}

stop_target() {
  local label=$1 round=$2
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$target_data"
}

log "building hindsight, bareserver, ingestbench, benchreport, profserve"
mkdir -p "$bin"
go build -o "$bin/hindsight" ./cmd/hindsight
for t in bareserver ingestbench benchreport profserve; do go build -o "$bin/$t" "./bench/$t"; done

files=()
if [ "$ingest" = 1 ]; then
  skipped=
  for round in $(seq "$runs"); do
    for label in $targets; do
      if [ "$label" = alertmanager ] && [ -z "$am" ]; then
        skipped="Alertmanager skipped: prometheus-alertmanager is not installed (Debian: apt-get install prometheus-alertmanager)"
        continue
      fi
      start_target "$label" "$round"
      log "round $round/$runs: $label (pid $pid, $url): ${warmup}s warm-up, ${duration}s measured"
      out=$work/r$round-$label.json
      prof=()
      if [ -n "$pprof_url" ]; then
        prof=(--pprof "$pprof_url" --profile-out "$results/$stamp-$label-r$round.cpu.pb.gz")
      fi
      if ! "$bin/ingestbench" --shape "$shape" --label "$label" --round "$round" --url "$url" --pid "$pid" \
        --duration "${duration}s" --warmup "${warmup}s" --connections "$connections" --alerts "$alerts" \
        --services "$services" --repeat-ratio "$repeat" "${prof[@]}" --json >"$out"; then
        log "$label failed in round $round; its log:"
        tail -20 "$work/$label-$round.log" >&2
        stop_target "$label" "$round"
        exit 1
      fi
      stop_target "$label" "$round"
      files+=("$out")
    done
  done
  [ -n "$skipped" ] && log "$skipped"
  if [ ${#files[@]} -eq 0 ]; then
    echo "run.sh: no target was measured" >&2
    exit 1
  fi
  echo
  echo "Ingest, medians of $runs rounds ($duration s measured after $warmup s warm-up; $connections connections, $alerts alerts/request, $services services, repeat ratio $repeat):"
  "$bin/benchreport" --out "$results/$stamp.json" \
    --meta "nproc=$nproc_" --meta "cpu_model=$cpu_model" --meta "kernel=$(uname -r)" \
    --meta "go_version=$go_version" --meta "nats_server=$nats_version" --meta "alertmanager=$am_version" \
    --meta "commit=$commit" --meta "runs=$runs" --meta "duration_seconds=$duration" --meta "warmup_seconds=$warmup" \
    --meta "note=${skipped:-}" "${files[@]}"
  echo "(× columns: median of the per-round ratios; written to $results/$stamp.json)"
fi

if [ "$gobench" = 1 ]; then
  if [ -z "$benchpkgs" ]; then
    benchpkgs=$(grep -l '^func Benchmark' $(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go') |
      xargs -n1 dirname | sort -u | sed 's|^\([^.]\)|./\1|' | paste -sd' ')
  fi
  raw=$results/$stamp-gobench.txt
  log "Go benchmarks: go test -run '^\$' -bench . -count $count $benchpkgs"
  # shellcheck disable=SC2086
  go test -run '^$' -bench . -benchmem -count "$count" -timeout 60m $benchpkgs | tee "$raw"
  log "benchstat"
  stat=$results/$stamp-benchstat.txt
  if command -v benchstat >/dev/null; then
    benchstat "$raw" | tee "$stat"
  elif timeout 300 go run golang.org/x/perf/cmd/benchstat@latest "$raw" >"$stat" 2>"$work/benchstat.err"; then
    cat "$stat"
  else
    rm -f "$stat"
    echo "benchstat unavailable (go run golang.org/x/perf/cmd/benchstat@latest failed: $(tail -1 "$work/benchstat.err")); the raw output above is in $raw"
  fi
fi

if [ "$rebuild" != 0 ]; then
  log "rebuild speed over $rebuild events (TestRebuildSpeed)"
  HINDSIGHT_REBUILD_EVENTS=$rebuild go test -count=1 -run '^TestRebuildSpeed$' -v -timeout 60m ./cmd/hindsight |
    tee "$results/$stamp-rebuild.txt" | grep -E 'events|ok|FAIL|---' || true
fi
