#!/bin/sh
# The image's entrypoint, as in Lambda's base images: `docker run IMAGE app.handler` runs the
# handler under the Runtime Interface Emulator when one is there (SAM adds it as
# /var/rapid/aws-lambda-rie and starts it directly, so SAM does not come through here).
if [ $# -ne 1 ]; then
  echo "entrypoint requires the handler name to be the first argument" 1>&2
  exit 142
fi
export _HANDLER="$1"
if [ -z "${AWS_LAMBDA_RUNTIME_API}" ] && [ -x /var/rapid/aws-lambda-rie ]; then
  exec /var/rapid/aws-lambda-rie /var/runtime/bootstrap
fi
exec /var/runtime/bootstrap
