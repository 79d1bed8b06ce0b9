#!/usr/bin/env bash
# Fails if a pure folder (src/base, src/core, src/check, src/net/resp) includes I/O,
# threading, clock or global-randomness headers, or calls them. Protocol cores
# must return what to do in Ready instead (docs/design.md, "The one rule").
# Usage: check_pure.sh [ROOT]   (ROOT defaults to the repository)
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
pattern='#include[[:space:]]*<(thread|mutex|shared_mutex|condition_variable|future|fstream|iostream|filesystem|random|asio[^>]*|sys/socket\.h|netinet/[^>]*|unistd\.h|fcntl\.h|chrono|ctime|time\.h)>|std::random_device|steady_clock::now|system_clock::now|high_resolution_clock::now|std::this_thread|std::thread|std::mutex|[^_a-z]fopen\(|[^_a-z]rand\(\)'
found=0
for dir in src/base src/core src/check src/net/resp; do
  [ -d "$root/$dir" ] || continue
  while IFS= read -r f; do
    case "$f" in *_test.cc|*_bench.cc|*/testing.h) continue ;; esac
    if grep -nE "$pattern" "$f" >/tmp/check_pure.$$ 2>/dev/null; then
      while IFS= read -r line; do echo "impure: ${f#$root/}:$line"; done </tmp/check_pure.$$
      found=1
    fi
  done < <(find "$root/$dir" -type f \( -name '*.h' -o -name '*.cc' \))
done
rm -f /tmp/check_pure.$$
if [ $found -ne 0 ]; then
  echo "pure folders must not do I/O, threads, clocks or global randomness"
  exit 1
fi
echo "pure folders are pure"
