"""Runs chassisml's reference Open Model Interface server (chassis.server.omi) on loopback.

The real server class `ModzyModel` is used unmodified; only the bind address differs
(chassis hard-codes 0.0.0.0). The model's build context is prepared the way chassis
prepares a container (`ChassisModel.prepare_context`), without Docker, and the server
runs with that context as its working directory (it reads ./data/model_info and
./data/model.pkl from there).

Two test models (docs/connectors/omi.md, "Tests"):

* `textops` (batch size 1): input file `text` (UTF-8) -> output files `upper.txt`
  (the text upper-cased) and `length.json` (`{"chars": N}`). Text containing the word
  `fail` raises, so that item comes back as chassis reports per-item failures:
  an `error` file (with `success` left true).
* `batcher` (batch size 2, batch predict function): input file `input` (a JSON list of
  numbers) -> `results.json` (`{"doubled": [...]}`); input that is not a JSON list
  raises inside the batch function, so chassis answers with no outputs at all for the
  whole request (`len(outputs) != len(inputs)`).

Usage: launch.py --dir DIR --model textops|batcher --port PORT
"""

import argparse
import asyncio
import json
import os
import sys


def textops(inputs):
    text = inputs["text"].decode("utf-8")
    if "fail" in text:
        raise ValueError(f"textops refuses input containing 'fail' ({len(text)} chars)")
    return {
        "upper.txt": text.upper().encode("utf-8"),
        "length.json": json.dumps({"chars": len(text)}).encode(),
    }


def batcher(batch):
    out = []
    for item in batch:
        numbers = json.loads(item["input"])
        if not isinstance(numbers, list):
            raise ValueError("input must be a JSON list of numbers")
        out.append({"results.json": json.dumps({"doubled": [2 * x for x in numbers]}).encode()})
    return out


def build(ctx, model):
    from chassis.builder import BuildOptions
    from chassisml import ChassisModel

    if model == "textops":
        cm = ChassisModel(textops)
        md = cm.metadata
        md.model_name = "textops"
        md.model_version = "1.2.0"
        md.model_author = "inferlink tests"
        md.summary = "Upper-cases text; refuses text containing 'fail'."
        md.add_input("text", ["text/plain"], "1M", "UTF-8 text")
        md.add_output("upper.txt", "text/plain", "1M", "the text upper-cased")
        md.add_output("length.json", "application/json", "1K", "character count")
        md.required_ram = "256M"
        md.num_cpus = 0.5
        md.status_timeout = "20s"
        md.run_timeout = "30s"
    else:
        cm = ChassisModel(batcher, batch_size=2)
        md = cm.metadata
        md.model_name = "batcher"
        md.model_version = "0.3.1"
        md.summary = "Doubles JSON lists of numbers, two per batch."
        md.add_input("input", ["application/json"], "1M", "JSON list of numbers")
        md.add_output("results.json", "application/json", "1M", "doubled numbers")
        md.batch_size = 2
    cm.prepare_context(BuildOptions(base_dir=ctx))


async def serve(port):
    from grpclib.health.service import Health
    from grpclib.reflection.service import ServerReflection
    from grpclib.server import Server
    from grpclib.utils import graceful_exit

    from chassis.server.omi.server import ModzyModel

    server = Server(ServerReflection.extend([ModzyModel(), Health()]))
    with graceful_exit([server]):
        await server.start("127.0.0.1", port)
        print(f"OMI server on 127.0.0.1:{port}", flush=True)
        await server.wait_closed()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--model", choices=["textops", "batcher"], required=True)
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    ctx = os.path.join(os.path.abspath(args.dir), f"ctx-{args.model}")
    # prepare_context is chatty on stdout; keep the log readable.
    stdout = sys.stdout
    sys.stdout = sys.stderr
    build(ctx, args.model)
    sys.stdout = stdout
    os.chdir(ctx)
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
