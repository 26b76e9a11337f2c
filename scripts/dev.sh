#!/usr/bin/env bash
# The two commands a newcomer needs, on a fresh machine:
#   scripts/dev.sh demo   install, start Kafka + Redis, run the fleet on sample conversations
#   scripts/dev.sh test   install, start Kafka + Redis, typecheck, lint and run every test
# Also: scripts/dev.sh fleet [--workers N] (install, start Kafka + Redis, run the fleet until Ctrl-C),
#   scripts/dev.sh setup (install only), scripts/dev.sh cli <args> (the tracesift CLI),
#   scripts/dev.sh bench limits|overhead [-- flags] (install, start Kafka + Redis, run a benchmark),
#   scripts/dev.sh faults [--short] (the fault suite, on its own Kafka broker and Redis).
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

# The CLI replaces this shell (exec) and runs in node itself, not under pnpm or the tsx launcher:
# Ctrl-C and SIGTERM then reach the command directly, which finishes its chunk, prints its totals
# and leaves its consumer group, so the same command can run again at once.
run_cli() {
  export KAFKAJS_NO_PARTITIONER_WARNING=1
  exec node --import tsx services/cli/src/main.ts "$@"
}

case "${1:-}" in
  setup)
    setup
    ;;
  demo)
    setup
    services_up
    run_cli demo "${@:2}"
    ;;
  fleet)
    setup
    services_up
    run_cli fleet "${@:2}"
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
    # One plain closing line for CI readers: "tests: N passed, N failed". A file that failed to load
    # (or failed in a hook) ran no test of its own, so it counts as one failure here.
    node -e '
      const r = require("./.cache/vitest-report.json");
      const broken = r.testResults.filter((f) => f.status === "failed" && !f.assertionResults.some((a) => a.status === "failed")).length;
      console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests + broken} failed`);
    ' || echo "tests: 0 passed, 1 failed"
    exit "$status"
    ;;
  cli)
    run_cli "${@:2}"
    ;;
  faults)
    setup
    # The suite starts its own broker and Redis on free ports; this fetches the Kafka jars they share.
    services_up
    exec node --import tsx test/faults/run.ts "${@:2}"
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
    echo "usage: scripts/dev.sh demo|test|fleet|setup|cli <args>|bench limits|overhead|faults [--short]" >&2
    exit 2
    ;;
esac
