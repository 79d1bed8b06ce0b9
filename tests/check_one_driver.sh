#!/usr/bin/env bash
# Fails if any code outside the host drives an engine through its Ready
# contract: there must be exactly one driver (src/host/replica_host*.h), run
# by both the server and the simulator (docs/design.md, "One host"). Unit
# tests of a core alone (src/core/*/testing.h, *_test.cc) may drive it by
# hand; nothing else may call ready()/advance()/take_messages() on an engine.
# Usage: check_one_driver.sh [ROOT]   (ROOT defaults to the repository)
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
pattern='(\.|->)(ready|take_messages)\(\)|(\.|->)advance\((\*?rd|ready)'
found=0
for dir in src tools; do
  [ -d "$root/$dir" ] || continue
  while IFS= read -r f; do
    rel=${f#$root/}
    case "$rel" in
      src/host/replica_host*.h) continue ;;
      src/core/*) continue ;;  # the engines themselves, their tests and testing.h
      *_test.cc) continue ;;
    esac
    if grep -nE "$pattern" "$f" >/tmp/check_one_driver.$$ 2>/dev/null; then
      while IFS= read -r line; do echo "second driver: $rel:$line"; done </tmp/check_one_driver.$$
      found=1
    fi
  done < <(find "$root/$dir" -type f \( -name '*.h' -o -name '*.cc' \))
done
rm -f /tmp/check_one_driver.$$
if [ $found -ne 0 ]; then
  echo "only src/host/replica_host.h may drive an engine's Ready loop"
  exit 1
fi
echo "one driver: src/host/replica_host.h"
