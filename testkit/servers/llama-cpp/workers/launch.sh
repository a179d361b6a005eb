#!/usr/bin/env bash
# Starts the llama-cpp-workers kind: llama-cpp-python's OpenAI-compatible app
# (llama_cpp.server.app:create_app) in WORKERS uvicorn processes, each with its own
# SO_REUSEPORT socket on 127.0.0.1:PORT (reuseport_worker.py), so that requests are answered
# concurrently (one llama-cpp-python process answers one request at a time: its model sits
# behind a lock) and a burst of new connections is spread over the workers by the kernel.
# Every worker loads all-MiniLM-L6-v2 (FP32, mean pooling, 384 dims, id `all-minilm-l6-v2`)
# with the llama-cpp kind's embedding settings (docs/testing.md, "llama-cpp-workers").
#   workers/launch.sh DIR PORT VENV MODELS_DIR
# Environment: INFERLINK_LLAMA_WORKERS (worker processes, default 2, 1..32) and
# INFERLINK_LLAMA_THREADS (--n_threads/--n_threads_batch of each worker, default 1, 1..16).
# This shell stays the group leader: when a worker exits, or the shell gets SIGTERM, it stops
# the whole group.
set -euo pipefail
dir=$1 port=$2 venv=$3 models=$4
workers=${INFERLINK_LLAMA_WORKERS:-2}
threads=${INFERLINK_LLAMA_THREADS:-1}
[[ "$workers" =~ ^[0-9]+$ && "$workers" -ge 1 && "$workers" -le 32 ]] ||
  { echo "workers/launch.sh: INFERLINK_LLAMA_WORKERS must be 1..32, got '$workers'" >&2; exit 2; }
[[ "$threads" =~ ^[0-9]+$ && "$threads" -ge 1 && "$threads" -le 16 ]] ||
  { echo "workers/launch.sh: INFERLINK_LLAMA_THREADS must be 1..16, got '$threads'" >&2; exit 2; }
cd "$dir"
# create_app reads its settings from the JSON file CONFIG_FILE names (llama_cpp.server's
# ConfigFileSettings: server fields plus a list of models); each worker calls the factory.
# Same model settings as launch.sh's embedding server; interrupt_requests off as there.
"$venv/bin/python" - "$dir/workers-config.json" "$port" "$threads" "$models/all-minilm-l6-v2-f32.gguf" <<'EOF'
import json, sys
path, port, threads, model = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
settings = {
    "host": "127.0.0.1", "port": port, "interrupt_requests": False,
    "models": [{
        "model": model, "model_alias": "all-minilm-l6-v2", "embedding": True,
        "n_ctx": 512, "n_batch": 512, "n_ubatch": 512,
        "n_threads": threads, "n_threads_batch": threads,
        "n_gpu_layers": 0, "logits_all": False, "verbose": False,
    }],
}
with open(path, "w") as f:
    json.dump(settings, f, indent=1)
EOF
printf 'embedding_port=%s\nembedding_url=http://127.0.0.1:%s\n' "$port" "$port" >"$dir/extra.partial"
printf 'embedding_model=all-minilm-l6-v2\nworkers=%s\nthreads_per_worker=%s\nmodels_dir=%s\n' \
  "$workers" "$threads" "$models" >>"$dir/extra.partial"
mv "$dir/extra.partial" "$dir/extra"
export CONFIG_FILE="$dir/workers-config.json"
: >"$dir/embedding.log"
for ((i = 0; i < workers; i++)); do
  "$venv/bin/python" "$(dirname "${BASH_SOURCE[0]}")/reuseport_worker.py" "$port" >>"$dir/embedding.log" 2>&1 &
done
trap 'trap - TERM; kill -TERM -- -$$' TERM
wait -n || true
echo "workers/launch.sh: a worker exited; stopping the group" >&2
tail -n 20 "$dir/embedding.log" >&2 || true
trap - TERM
kill -TERM -- -$$
