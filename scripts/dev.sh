#!/usr/bin/env bash
# The two commands a newcomer needs, on a fresh machine:
#   scripts/dev.sh demo   install, start Kafka + Redis, run the fleet on sample conversations
#   scripts/dev.sh test   install, start Kafka + Redis, typecheck, lint and run every test
# Also: scripts/dev.sh setup (install only), scripts/dev.sh cli <args> (the tracesift CLI),
#   scripts/dev.sh bench limits|overhead [-- flags] (install, start Kafka + Redis, run a benchmark).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PNPM_VERSION=$(node -p 'require("./package.json").packageManager.split("@")[1]')

log() { printf 'dev: %s\n' "$*" >&2; }

setup() {
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if (( major < 20 )); then log "Node >= 20 is required (found $(node -v))"; exit 1; fi
  # corepack cannot verify pnpm's signature against this registry, so pnpm comes from npm.
  if [[ "$(pnpm --version 2>/dev/null || true)" != "$PNPM_VERSION" ]]; then
    log "installing pnpm $PNPM_VERSION"
    npm install -g --silent "pnpm@$PNPM_VERSION" >/dev/null
  fi
  pnpm install --frozen-lockfile --reporter=silent
}

services_up() {
  scripts/services.sh tools "$@"
  scripts/services.sh up
  export KAFKAJS_NO_PARTITIONER_WARNING=1
}

case "${1:-}" in
  setup)
    setup
    ;;
  demo)
    setup
    services_up
    exec pnpm exec tsx services/cli/src/main.ts demo
    ;;
  test)
    setup
    services_up kcat docker-compose prometheus prometheus-pushgateway prometheus-redis-exporter
    log "typecheck"
    pnpm exec turbo run typecheck --output-logs=errors-only
    log "lint"
    pnpm exec biome check .
    log "tests"
    mkdir -p .cache
    status=0
    pnpm exec vitest run --reporter=default --reporter=json --outputFile.json=.cache/vitest-report.json || status=$?
    # One plain closing line for CI readers: "tests: N passed, N failed".
    node -e 'const r=require("./.cache/vitest-report.json"); console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed`)' || true
    exit "$status"
    ;;
  cli)
    shift
    export KAFKAJS_NO_PARTITIONER_WARNING=1
    exec pnpm exec tsx services/cli/src/main.ts "$@"
    ;;
  bench)
    case "${2:-}" in
      limits | overhead) ;;
      *) echo "usage: scripts/dev.sh bench limits|overhead [-- flags]" >&2; exit 2 ;;
    esac
    setup
    services_up
    exec pnpm "bench:$2" "${@:3}"
    ;;
  *)
    echo "usage: scripts/dev.sh demo|test|setup|cli <args>|bench limits|overhead" >&2
    exit 2
    ;;
esac
