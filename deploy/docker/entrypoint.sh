#!/bin/sh
# The image's entrypoint: the first argument picks the process, the rest are its arguments.
#   planner | executor | reporter   a service (settings from the environment)
#   sluice ARGS...                  the CLI, e.g. `sluice migrate --target latest --wait`
#   anything else                   run as given (e.g. `node deploy/compose/seed-registry.mjs`)
set -e
case "${1:-}" in
  planner | executor | reporter)
    service="$1"
    shift
    exec node "/app/services/$service/dist/main.js" "$@"
    ;;
  sluice)
    shift
    exec sluice "$@"
    ;;
  "")
    echo "usage: planner | executor | reporter | sluice ARGS... | COMMAND" >&2
    exit 2
    ;;
  *)
    exec "$@"
    ;;
esac
