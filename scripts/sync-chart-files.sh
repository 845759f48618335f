#!/usr/bin/env bash
# Copies the monitoring sources of truth into the Helm chart, which can only read files inside
# itself (.Files.Get):
#   deploy/grafana/*.json                   -> charts/queue-worker/files/grafana/
#   deploy/prometheus/*.yaml (rule files,   -> charts/queue-worker/files/prometheus/
#     i.e. with top-level `groups:`; the promtool tests in deploy/prometheus/tests/ stay out)
# Copies stale files away too. `--check` changes nothing and exits 1 if the chart copy differs
# (tests/chart/test_chart_files.py runs it that way).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
check=false
[ "${1:-}" = "--check" ] && check=true
status=0

sync_dir() {  # sync_dir SRC_DIR GLOB DEST_DIR [grep-filter]
  local src=$1 glob=$2 dest=$3 filter=${4:-}
  local want=() f name
  if [ -d "$src" ]; then
    for f in "$src"/$glob; do
      [ -f "$f" ] || continue
      if [ -n "$filter" ] && ! grep -qE "$filter" "$f"; then continue; fi
      want+=("$(basename "$f")")
    done
  fi
  $check || mkdir -p "$dest"
  for name in "${want[@]}"; do
    if ! cmp -s "$src/$name" "$dest/$name"; then
      if $check; then echo "drift: $dest/$name differs from $src/$name"; status=1
      else cp "$src/$name" "$dest/$name"; echo "copied $src/$name"; fi
    fi
  done
  [ -d "$dest" ] || return 0
  for f in "$dest"/*; do
    [ -e "$f" ] || continue
    name=$(basename "$f")
    if [[ ! " ${want[*]} " == *" $name "* ]]; then
      if $check; then echo "drift: $dest/$name has no source in $src"; status=1
      else rm -f "$f"; echo "removed $dest/$name"; fi
    fi
  done
}

cd "$root"
sync_dir deploy/grafana '*.json' charts/queue-worker/files/grafana
sync_dir deploy/prometheus '*.yaml' charts/queue-worker/files/prometheus '^groups:'
if $check && [ $status -ne 0 ]; then
  echo "the chart's copy of deploy/ is stale: run scripts/sync-chart-files.sh" >&2
fi
exit $status
