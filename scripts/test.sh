#!/usr/bin/env bash
# The project's one test command (`npm test`): type-check, lint, dependency direction,
# then node's test runner over an explicit file list (Node 20 expands no globs and
# finds no .ts files by itself).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== typecheck"; npx --no-install tsc --noEmit -p .
echo "== lint"; npx --no-install biome lint --diagnostic-level=error src test scripts bench
echo "== dependency direction"; node --import tsx scripts/check-deps.ts
# ISTHMUS_TEST_SCOPE: all (default: every test file, the cluster fault suite included),
# unit (src/ only), faults (test/faults/ only: `npm run test:faults`).
scope=${ISTHMUS_TEST_SCOPE:-all}
if [ "$scope" = unit ]; then
  mapfile -t files < <(find src -name '*.test.ts' | sort)
elif [ "$scope" = faults ]; then
  mapfile -t files < <(find test/faults -name '*.test.ts' | sort)
elif [ "$scope" = all ]; then
  mapfile -t files < <(find src test -name '*.test.ts' | sort)
else
  echo "ISTHMUS_TEST_SCOPE=$scope: expected all, unit or faults" >&2; exit 2
fi
if [ "$#" -gt 0 ]; then files=("$@"); fi
if [ "${#files[@]}" -eq 0 ]; then echo "no test files found" >&2; exit 1; fi
echo "== ${#files[@]} test files"
# A hung test fails after 20 min instead of holding CI until its 90-minute limit.
exec node --import tsx --test --test-reporter=tap --test-timeout=1200000 "${files[@]}"
