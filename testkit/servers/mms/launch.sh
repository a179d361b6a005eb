#!/usr/bin/env bash
# Starts multi-model-server on 127.0.0.1 with the `doubler` and `doubler2` test models (doubler_service.py),
# the way sagemaker-inference launches it, but with everything inside the instance dir.
#   launch.sh DIR INFERENCE_PORT MANAGEMENT_PORT VENV
set -euo pipefail
dir=$1 http=$2 mgmt=$3 venv=$4
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$dir/store/doubler" "$dir/store/doubler2" "$dir/tmp" "$dir/logs"
# Two models, so that /invocations needs X-Amzn-SageMaker-Target-Model (with one model MMS
# ignores the header and an unknown model name would still be served).
cp "$here/doubler_service.py" "$dir/store/doubler/"
cp "$here/doubler_service.py" "$dir/store/doubler2/"
cat >"$dir/mms.properties" <<PROPS
inference_address=http://127.0.0.1:$http
management_address=http://127.0.0.1:$mgmt
enable_envvars_config=false
decode_input_request=false
load_models=ALL
default_service_handler=doubler_service:handle
default_workers_per_model=1
PROPS
export TEMP="$dir/tmp" TMPDIR="$dir/tmp" LOG_LOCATION="$dir/logs" METRICS_LOCATION="$dir/logs"
cd "$dir"
exec "$venv/bin/multi-model-server" --start --foreground --mms-config "$dir/mms.properties" \
  --model-store "$dir/store" --models doubler=doubler doubler2=doubler2
