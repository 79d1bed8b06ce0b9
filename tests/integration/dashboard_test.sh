#!/usr/bin/env bash
# The dashboard in a real browser: a local 3-node cluster with a semi-sync
# keyspace; headless Chromium loads node 1's admin page and runs its script;
# the rendered page must show every keyspace with its strategy and the node
# that leads it, and a keyspace row for the default group.
#
#   dashboard_test.sh CHORUS_BINARY
set -euo pipefail
chorus=$1
browser=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$browser" ]]; then
  echo "dashboard_test: chromium is not installed (scripts/install-deps installs it)" >&2
  exit 1
fi
dir=$(mktemp -d /tmp/chorus-dashboard.XXXXXX)
port=$((29000 + RANDOM % 500))
cleanup() { "$chorus" down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
"$chorus" up --nodes 3 --dir "$dir" --base-port "$port" --keyspace orders:semi-sync >/dev/null
admin=$((port + 1000))
for attempt in $(seq 1 20); do
  dom=$(timeout 60 "$browser" --headless --no-sandbox --disable-gpu --user-data-dir="$dir/chrome" \
          --virtual-time-budget=3000 --dump-dom "http://127.0.0.1:$admin/" 2>/dev/null || true)
  if grep -Eq '<td>orders</td><td>orders:</td><td>semi-sync</td><td[^>]*>(leader|follower)</td><td>n[1-3]</td>' <<<"$dom" &&
     grep -Eq '<td>default</td><td>\(everything else\)</td><td>raft</td>' <<<"$dom"; then
    echo "dashboard_test: the page lists the keyspaces with their strategy and leader"
    exit 0
  fi
  sleep 0.5
done
echo "dashboard_test: the rendered page never showed the keyspaces; last DOM:" >&2
grep -A3 'id="keyspaces"' <<<"$dom" >&2 || echo "$dom" | head -40 >&2
exit 1
