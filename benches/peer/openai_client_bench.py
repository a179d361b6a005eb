"""The openai Python client side of the OpenAI-compatible peer comparison
(scripts/bench-openai; benches/openai_peer.rs is the inferlink side).

Sends the same embedding requests as benches/openai_peer.rs to the same
llama-cpp-python server through the official client, `openai.AsyncOpenAI`
(the version pinned in scripts/bench-openai): the same texts, BATCH texts per
request, encoding_format="float", at concurrency 1, 8 and 32 (asyncio tasks
sharing one client), bounded by count and time. Measures throughput and this
process's CPU time (user + system, resource.getrusage(RUSAGE_SELF)) per
request. Prints one `RESULT ...` line per case in the Rust bench's format.

    python openai_client_bench.py EMBED_URL [TEXTS]
    python openai_client_bench.py --table RESULT_FILE...   # merge into tables
"""

import asyncio
import resource
import sys
import time

import os

BATCH = int(os.environ.get("INFERLINK_PEER_BATCH", "32"))
CONCURRENCY = [1, 8, 32]
WARMUP = 3
CASE_BUDGET = 120.0
MODEL = "all-minilm-l6-v2"


def text(i):
    """The i-th short text: the Rust side builds the same."""
    return f"Document {i} is a short note about topic {i % 97} and item {i % 13}."


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run(embed_url, texts):
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=embed_url.rstrip("/") + "/v1", api_key="unused", timeout=300.0)
    corpus = [text(i) for i in range(texts)]
    requests = [corpus[i : i + BATCH] for i in range(0, texts, BATCH)]

    async def embed(batch):
        answer = await client.embeddings.create(model=MODEL, input=batch, encoding_format="float")
        assert len(answer.data) == len(batch)

    for batch in requests[:WARMUP]:
        await embed(batch)
    for c in CONCURRENCY:
        next_index = 0
        done = 0
        start = time.perf_counter()

        async def worker():
            nonlocal next_index, done
            while True:
                i = next_index
                next_index += 1
                if i >= len(requests) or time.perf_counter() - start >= CASE_BUDGET:
                    return
                await embed(requests[i])
                done += 1

        cpu_before = cpu_seconds()
        await asyncio.gather(*(worker() for _ in range(c)))
        secs = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_before
        sent = sum(len(batch) for batch in requests[:done])
        print(
            f"RESULT client=openai-python case=embed batch={BATCH} concurrency={c} requests={done} "
            f"texts={sent} seconds={secs:.3f} rps={done / secs:.2f} "
            f"texts_per_s={sent / secs:.1f} cpu_s={cpu:.3f} "
            f"cpu_ms_per_request={cpu * 1e3 / max(done, 1):.3f}",
            flush=True,
        )
    await client.close()


def parse(paths):
    rows = []
    for path in paths:
        with open(path) as f:
            for line in f:
                if line.startswith("RESULT "):
                    rows.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
    return rows


def table(paths):
    rows = parse(paths)
    embed = {(r["client"], r["concurrency"]): r for r in rows if r.get("case") == "embed"}
    print("| concurrency | openai-python texts/s | inferlink texts/s | inferlink / openai | "
          "openai CPU ms/request | inferlink CPU ms/request | CPU ratio (openai / inferlink) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for c in CONCURRENCY:
        py, rs = embed.get(("openai-python", str(c))), embed.get(("inferlink", str(c)))
        if not py or not rs:
            continue
        ratio = float(rs["texts_per_s"]) / float(py["texts_per_s"])
        cpu_ratio = float(py["cpu_ms_per_request"]) / max(float(rs["cpu_ms_per_request"]), 1e-9)
        print(f"| {c} | {py['texts_per_s']} | {rs['texts_per_s']} | {ratio:.3f} | "
              f"{py['cpu_ms_per_request']} | {rs['cpu_ms_per_request']} | {cpu_ratio:.1f} |")
    for r in rows:
        if r.get("case") in ("overhead", "ttft"):
            print()
            print(" ".join(f"{k}={v}" for k, v in r.items()))


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "--table":
        table(sys.argv[2:])
        return
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    texts = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    asyncio.run(run(sys.argv[1], texts))


if __name__ == "__main__":
    main()
