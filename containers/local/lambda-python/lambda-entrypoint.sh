#!/bin/sh
# Entry point of the stand-in, as in AWS's image: the handler is the only argument. Without a runtime API
# address there is nothing to serve the function: AWS's image then starts its bundled runtime interface
# emulator; this stand-in has none of its own (sam local adds one at /var/rapid/aws-lambda-rie).
set -eu
[ $# -eq 1 ] || { echo "entrypoint requires the handler name to be the first argument" >&2; exit 142; }
export _HANDLER="$1"
if [ -z "${AWS_LAMBDA_RUNTIME_API:-}" ]; then
  [ -x /var/rapid/aws-lambda-rie ] || { echo "no AWS_LAMBDA_RUNTIME_API and no emulator: run through sam local" >&2; exit 1; }
  exec /var/rapid/aws-lambda-rie /var/runtime/bootstrap
fi
exec /var/runtime/bootstrap
