#!/usr/bin/env bash
# Regenerates the committed jextract bindings. Needs `jextract` on PATH (built from openjdk/jextract; it is
# not in any package registry) and the headers named by each script below.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for script in "$here"/regenerate-*.sh; do
  echo "== $script"
  bash "$script"
done
