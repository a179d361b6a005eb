"""The Python side of the batch comparison (scripts/bench-batch).

Reads the same JSON Lines file `inferlink batch` reads (one OIP request per
line: FP32 input `INPUT_1`, shape [1, 4], to Triton's `doubler`), and sends
each line through NVIDIA's tritonclient over HTTP (binary tensor data), at
concurrency C: C threads, each with its own client (tritonclient's HTTP client
cannot be shared across threads), taking lines from one queue. Records every
line's latency; prints one `RESULT` line per concurrency.

    python batch_tritonclient.py HTTP_URL LINES.jsonl C [C ...]
"""

import json
import queue
import sys
import threading
import time


def run(http_url, lines, concurrency):
    import numpy as np
    import tritonclient.http as tc

    host = http_url.split("://", 1)[-1]
    work = queue.Queue()
    for line in lines:
        work.put(line)
    latencies = []
    failures = []
    lock = threading.Lock()

    def worker():
        client = tc.InferenceServerClient(url=host, connection_timeout=60.0, network_timeout=60.0)
        mine, bad = [], []
        while True:
            try:
                text = work.get_nowait()
            except queue.Empty:
                break
            t = time.perf_counter()
            try:
                req = json.loads(text)
                tensor = req["inputs"][0]
                data = np.array(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
                inp = tc.InferInput(tensor["name"], list(data.shape), "FP32")
                inp.set_data_from_numpy(data, binary_data=True)
                out = tc.InferRequestedOutput("OUTPUT_1", binary_data=True)
                r = client.infer("doubler", [inp], outputs=[out])
                got = r.as_numpy("OUTPUT_1")
                assert got.shape == data.shape
            except Exception as e:  # recorded, like inferlink's error lines
                bad.append(str(e))
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)
            failures.extend(bad)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.perf_counter() - start
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    p50 = latencies[len(latencies) // 2] * 1000
    print(
        f"RESULT client=tritonclient concurrency={concurrency} lines={len(latencies)} "
        f"failed={len(failures)} wall_s={wall:.3f} lines_per_s={len(latencies) / wall:.1f} "
        f"p50_ms={p50:.3f} p99_ms={p99:.3f}",
        flush=True,
    )


def main():
    http_url, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    for c in sys.argv[3:]:
        run(http_url, lines, int(c))


if __name__ == "__main__":
    main()
