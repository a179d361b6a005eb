"""Drives the interleaved embed comparison of scripts/bench-openai: the openai
Python client (openai_client_bench.py --worker) and inferlink
(benches/openai_peer.rs, INFERLINK_PEER_MODE=worker) take turns against the
same server.

For each concurrency C, the TEXTS texts are cut into rounds of ROUND_TEXTS,
or of C x BATCH when that is more (so that a round keeps C requests in
flight); in each round both clients send the same slice, one after the other, in ABBA
order (round 0: openai-python then inferlink, round 1: inferlink then
openai-python, ...), so drift in the server's speed or the machine's load hits
both sides alike. Each concurrency gets an equal share of BUDGET seconds; no
new round starts past it. Per round: both clients' texts/s and their ratio,
the 1-minute load average before and after. Per concurrency: each client's
totals (texts / seconds over all its rounds), the median, min and max of the
per-round ratios, and CPU (user + system) per request.

    python openai_interleave.py --texts N --round-texts R --batch B \
        --concurrency 1,8,32 --budget S --python-worker CMD --rust-worker CMD
"""

import argparse
import math
import os
import queue
import shlex
import statistics
import subprocess
import sys
import threading
import time

# Longest wait for one worker's answer (a worker bounds a round at 300 s).
ANSWER_TIMEOUT = 420.0


class Worker:
    """A worker process answering `embed C START END` lines with RESULT lines."""

    def __init__(self, name, command):
        self.name = name
        self.process = subprocess.Popen(
            shlex.split(command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def expect(self, prefix):
        deadline = time.monotonic() + ANSWER_TIMEOUT
        while True:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            except queue.Empty:
                sys.exit(f"interleave: {self.name} sent no {prefix} line in {ANSWER_TIMEOUT:.0f} s")
            if line is None:
                sys.exit(f"interleave: {self.name} exited (status {self.process.wait()})")
            if line.startswith(prefix):
                return line
            sys.stderr.write(f"[{self.name}] {line}")

    def round(self, concurrency, start, end):
        self.process.stdin.write(f"embed {concurrency} {start} {end}\n")
        self.process.stdin.flush()
        line = self.expect("RESULT ")
        sys.stdout.write(line)
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        return {k: float(fields[k]) for k in ("requests", "texts", "seconds", "cpu_s")}

    def stop(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def load():
    return os.getloadavg()[0]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, required=True)
    parser.add_argument("--round-texts", type=int, required=True)
    parser.add_argument("--batch", type=int, required=True, help="texts per request (both workers)")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--budget", type=float, required=True)
    parser.add_argument("--python-worker", required=True)
    parser.add_argument("--rust-worker", required=True)
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    share = args.budget / len(levels)

    workers = {}
    try:
        workers["openai-python"] = Worker("openai-python", args.python_worker)
        workers["inferlink"] = Worker("inferlink", args.rust_worker)
        for w in workers.values():
            w.expect("READY")
        summaries = []
        for c in levels:
            rounds = []
            round_texts = max(args.round_texts, c * args.batch)
            planned = math.ceil(args.texts / round_texts)
            print(f"INFO concurrency={c}: {planned} rounds of up to {round_texts} texts "
                  f"({math.ceil(round_texts / args.batch)} requests)", flush=True)
            begun = time.monotonic()
            for k, start in enumerate(range(0, args.texts, round_texts)):
                if time.monotonic() - begun >= share:
                    print(f"INFO concurrency={c}: budget share of {share:.0f} s used; "
                          f"{k} rounds of {planned}", flush=True)
                    break
                end = min(start + round_texts, args.texts)
                order = ["openai-python", "inferlink"] if k % 2 == 0 else ["inferlink", "openai-python"]
                before = load()
                got = {name: workers[name].round(c, start, end) for name in order}
                after = load()
                tps = {name: r["texts"] / r["seconds"] for name, r in got.items()}
                ratio = tps["inferlink"] / tps["openai-python"]
                print(f"ROUND concurrency={c} round={k} first={order[0]} texts={end - start} "
                      f"openai_texts_per_s={tps['openai-python']:.2f} "
                      f"inferlink_texts_per_s={tps['inferlink']:.2f} ratio={ratio:.4f} "
                      f"load_before={before:.2f} load_after={after:.2f}", flush=True)
                rounds.append((got, ratio, before, after))
            if rounds:
                summaries.append(summary(c, rounds))
    finally:
        for w in workers.values():
            w.stop()
    print()
    print("| concurrency | rounds | openai-python texts/s | inferlink texts/s | ratio of totals | "
          "median ratio (min–max) | rounds inferlink ahead (sign test p) | CPU ms/request openai / inferlink | "
          "load (1-min) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in summaries:
        print(f"| {s['concurrency']} | {s['rounds']} | {s['openai_tps']:.1f} | {s['inferlink_tps']:.1f} | "
              f"{s['ratio_totals']:.3f} | {s['ratio_median']:.3f} ({s['ratio_min']:.3f}–{s['ratio_max']:.3f}) | "
              f"{s['ahead']}/{s['rounds']} (p {s['sign_p']:.3f}) | {s['openai_cpu']:.2f} / {s['inferlink_cpu']:.2f} "
              f"({s['openai_cpu'] / max(s['inferlink_cpu'], 1e-9):.1f}×) | "
              f"{s['load_min']:.1f}–{s['load_max']:.1f} |")


def sign_test(ahead, n):
    """Two-sided sign-test p-value of `ahead` wins in `n` rounds (no difference: p = 1/2)."""
    tail = min(ahead, n - ahead)
    p = sum(math.comb(n, k) for k in range(tail + 1)) / 2**n
    return min(1.0, 2 * p)


def summary(c, rounds):
    def total(name, key):
        return sum(r[0][name][key] for r in rounds)

    ratios = [r[1] for r in rounds]
    loads = [x for r in rounds for x in r[2:]]
    s = {
        "concurrency": c,
        "rounds": len(rounds),
        "openai_tps": total("openai-python", "texts") / total("openai-python", "seconds"),
        "inferlink_tps": total("inferlink", "texts") / total("inferlink", "seconds"),
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "ahead": sum(1 for r in ratios if r > 1.0),
        "openai_cpu": total("openai-python", "cpu_s") * 1e3 / max(total("openai-python", "requests"), 1),
        "inferlink_cpu": total("inferlink", "cpu_s") * 1e3 / max(total("inferlink", "requests"), 1),
        "load_min": min(loads),
        "load_max": max(loads),
    }
    s["ratio_totals"] = s["inferlink_tps"] / s["openai_tps"]
    s["sign_p"] = sign_test(s["ahead"], len(ratios))
    print("RESULT case=embed-interleaved " + " ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in s.items()), flush=True)
    return s


if __name__ == "__main__":
    main()
