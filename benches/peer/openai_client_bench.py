"""The openai Python client side of the OpenAI-compatible peer comparison
(scripts/bench-openai; benches/openai_peer.rs is the inferlink side,
benches/peer/openai_interleave.py drives both).

Sends the same embedding requests as benches/openai_peer.rs to the same
llama-cpp-python server through the official client, `openai.AsyncOpenAI`
(the version pinned in benches/peer/openai-requirements.txt): the same texts,
BATCH texts per request (INFERLINK_PEER_BATCH, default 32),
encoding_format="float", asyncio tasks sharing one client, bounded by count
and time.

    python openai_client_bench.py --worker EMBED_URL

warms up (3 requests), prints READY, then for each stdin line
`embed CONCURRENCY START END` sends texts START..END with CONCURRENCY requests
in flight and prints one `RESULT ...` line (seconds, and this process's CPU
time, user + system, from resource.getrusage(RUSAGE_SELF)) in the Rust
worker's format.
"""

import asyncio
import os
import resource
import sys
import time

BATCH = int(os.environ.get("INFERLINK_PEER_BATCH", "32"))
WARMUP = 3
ROUND_BUDGET = 300.0
MODEL = "all-minilm-l6-v2"


def text(i):
    """The i-th short text: the Rust side builds the same."""
    return f"Document {i} is a short note about topic {i % 97} and item {i % 13}."


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def worker(embed_url):
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=embed_url.rstrip("/") + "/v1", api_key="unused", timeout=300.0)

    async def embed(batch):
        answer = await client.embeddings.create(model=MODEL, input=batch, encoding_format="float")
        assert len(answer.data) == len(batch)

    for _ in range(WARMUP):
        await embed([text(i) for i in range(BATCH)])
    print("READY", flush=True)
    # Blocking reads: nothing else runs on the loop between rounds.
    for line in sys.stdin:
        words = line.split()
        if words == ["quit"]:
            break
        if len(words) != 4 or words[0] != "embed":
            sys.exit(f"worker: expected `embed CONCURRENCY START END`, got {line!r}")
        c, first, end = (int(w) for w in words[1:])
        corpus = [text(i) for i in range(first, end)]
        requests = [corpus[i : i + BATCH] for i in range(0, len(corpus), BATCH)]
        next_index = 0
        done = 0
        start = time.perf_counter()

        async def one_task():
            nonlocal next_index, done
            while True:
                i = next_index
                next_index += 1
                if i >= len(requests) or time.perf_counter() - start >= ROUND_BUDGET:
                    return
                await embed(requests[i])
                done += 1

        cpu_before = cpu_seconds()
        await asyncio.gather(*(one_task() for _ in range(c)))
        secs = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_before
        sent = sum(len(batch) for batch in requests[:done])
        print(
            f"RESULT client=openai-python case=embed batch={BATCH} concurrency={c} start={first} "
            f"requests={done} texts={sent} seconds={secs:.4f} cpu_s={cpu:.4f}",
            flush=True,
        )
    await client.close()


def main():
    if len(sys.argv) != 3 or sys.argv[1] != "--worker":
        sys.exit(__doc__)
    asyncio.run(worker(sys.argv[2]))


if __name__ == "__main__":
    main()
