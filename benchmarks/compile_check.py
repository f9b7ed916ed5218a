"""Benchmark: torch.compile and bfloat16 autocast against eager for the CPU networks' training step, one thread.

    .venv/bin/python benchmarks/compile_check.py --models CNN_cpu CRNN_cpu --repeats 5

The batches, model and optimiser are benchmarks/throughput.py's (real records
of the shared sample, batched as the training loop batches them, so every
batch has its own length). Two copies of each model file's network, built from
the same seed, run the same batches: one eager, one wrapped in
`torch.compile(dynamic=True)` (inductor; variable lengths need dynamic shapes,
or every batch recompiles), and a third runs eagerly under
`torch.autocast("cpu", torch.bfloat16)` (the model file's `amp` on a CPU). The
first compiled pass (compilation) is timed on its own; then the three take
turns, repeat by repeat, so a busy machine slows all alike, and the median
seconds per pass over the batches and the ratios to eager are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import DATA, ROOT, Bench  # noqa: E402


def measure(name: str, repeats: int, n_batches: int) -> dict:
    import torch

    eager = Bench(ROOT / "models", name, str(DATA), n_batches)
    compiled = Bench(ROOT / "models", name, str(DATA), n_batches)
    compiled.model = torch.compile(compiled.model, dynamic=True)
    bf16 = Bench(ROOT / "models", name, str(DATA), n_batches)
    plain_step = bf16.step
    bf16.step = lambda *batch: _autocast(torch, plain_step, batch)
    started = time.perf_counter()
    compiled.seconds("train")  # compiles (and the warm-up inside compiles the first shape again)
    compile_s = time.perf_counter() - started
    times = {"eager": [], "compiled": [], "bf16": []}
    for _ in range(repeats):
        for key, bench in (("eager", eager), ("compiled", compiled), ("bf16", bf16)):
            times[key].append(bench.seconds("train"))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"model": name, "records": eager.n_train, "compile_s": compile_s, **med}


def _autocast(torch, step, batch):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        step(*batch)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["CNN_cpu", "CRNN_cpu"])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--batches", type=int, default=4)
    args = p.parse_args()
    import torch

    import ecgcore.training.train  # noqa: F401  (oneDNN's primitive cache as a training process sets it)

    torch.set_num_threads(1)
    print("| model file | records/pass | eager s | compiled s (speed-up) | bf16 autocast s (speed-up) "
          "| compilation s |\n"
          "|---|---|---|---|---|---|")
    for name in args.models:
        try:
            r = measure(name, args.repeats, args.batches)
        except Exception as exc:  # a failed compilation is a result too: print it and go on
            print(f"| {name} | | | | failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]} | |")
            continue
        e = r["eager"]
        print(f"| {name} | {r['records']} | {e:.3f} | {r['compiled']:.3f} ({e / r['compiled']:.2f}x) | "
              f"{r['bf16']:.3f} ({e / r['bf16']:.2f}x) | {r['compile_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
