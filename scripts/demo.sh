#!/usr/bin/env bash
# Build pgbunker and run its main job on a throwaway cluster (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node_modules/.bin/bun build.ts
exec node_modules/.bin/bun scripts/demo.ts
