#!/usr/bin/env bash
# Starts the llama-cpp kind: two llama-cpp-python OpenAI-compatible servers (llama_cpp.server)
# in this process group, both on 127.0.0.1 (docs/testing.md, "llama-cpp"):
#   generation  SmolLM2-135M-Instruct Q4_1, id `smollm2-135m-instruct`, on GEN_PORT
#   embeddings  all-MiniLM-L6-v2 (FP32, mean pooling, 384 dims), id `all-minilm-l6-v2`,
#               with --embedding true, on EMB_PORT
#   launch.sh DIR GEN_PORT EMB_PORT VENV MODELS_DIR
# This shell stays the group leader: when either server exits, or the shell gets SIGTERM,
# it stops the whole group.
set -euo pipefail
dir=$1 gen=$2 emb=$3 venv=$4 models=$5
cd "$dir"
# Bounded memory and CPU on a small shared machine: a fixed context per server, one thread
# each, and no per-token logits buffer (logits_all would keep n_ctx x vocab floats, 400 MB).
# interrupt_requests off: by default a new request cuts a running stream short (it ends
# after the role chunk, without finish_reason, then `data: [DONE]`); tests run concurrently.
common=(--host 127.0.0.1 --n_threads 1 --n_threads_batch 1 --n_gpu_layers 0 --verbose false
  --interrupt_requests false)
printf 'embedding_port=%s\nembedding_url=http://127.0.0.1:%s\n' "$emb" "$emb" >"$dir/extra.partial"
printf 'generation_model=smollm2-135m-instruct\nembedding_model=all-minilm-l6-v2\n' >>"$dir/extra.partial"
printf 'models_dir=%s\n' "$models" >>"$dir/extra.partial"
mv "$dir/extra.partial" "$dir/extra"
"$venv/bin/python" -m llama_cpp.server "${common[@]}" --port "$gen" \
  --model "$models/smollm2-135m-instruct-q4_1.gguf" --model_alias smollm2-135m-instruct \
  --n_ctx 2048 --logits_all false >"$dir/generation.log" 2>&1 &
"$venv/bin/python" -m llama_cpp.server "${common[@]}" --port "$emb" \
  --model "$models/all-minilm-l6-v2-f32.gguf" --model_alias all-minilm-l6-v2 \
  --embedding true --n_ctx 512 --n_batch 512 --n_ubatch 512 --logits_all false >"$dir/embedding.log" 2>&1 &
trap 'trap - TERM; kill -TERM -- -$$' TERM
wait -n || true
echo "launch.sh: a llama_cpp.server process exited; stopping the group" >&2
tail -n 20 "$dir/generation.log" "$dir/embedding.log" >&2 || true
trap - TERM
kill -TERM -- -$$
