"""Benchmark: training and inference records/s of every single-lead model file, on one thread.

    .venv/bin/python benchmarks/throughput.py --baseline /tmp/base
    .venv/bin/python benchmarks/throughput.py --models CNN_small CRNN_small GlobalSkipNet_but --baseline /tmp/base

For each models/*.json that takes CinC 2017 input (one lead; grids and
12-lead files are skipped), on real records of the shared sample set: a
training step (forward, backward, the model file's optimiser) and an
inference pass (eval mode, no gradient), each timed on fixed batches cut as
the training loop cuts them (by similar length), warm-up excluded, median of
repeats. FLOPs of one step and one pass come from torch's FlopCounterMode,
so records/s is also shown as achieved GFLOPS, beside this machine's own
one-thread 2048x2048 float32 matmul GFLOPS measured in the same run.

Every measurement runs in a worker process on one thread (the parent only
schedules). With --baseline DIR a second worker imports ecgcore from that
checkout (e.g. `git worktree add /tmp/base HEAD`) and reads its model files;
the two workers take turns, model by model and repeat by repeat, so a busy
machine slows both alike, and the table shows before, after and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "ecg-samples" / "cinc2017"
EVAL_BATCH = 64  # ecgcore.data.batches.EVAL_BATCH; a constant here: the script also runs in older checkouts


# ---- worker side: runs inside the checkout under test ------------------------------------------------------------

class Bench:
    """One model file's batches, model and optimiser, kept between requests."""

    def __init__(self, models_dir: Path, name: str, data_dir: str, n_batches: int):
        import numpy as np
        import torch

        from ecgcore.config.modelfile import parse_model
        from ecgcore.data import pipeline as data
        from ecgcore.models import get_architecture
        from ecgcore.training import optim
        from ecgcore.training.loop import epoch_batches

        self.torch = torch
        cfg = parse_model(json.loads((models_dir / f"{name}.json").read_text()), name)
        try:  # a track object since issue 24; the challenge year before (--baseline runs older checkouts)
            from ecgcore.tracks import open_track

            records = data.dataset_for(open_track("cinc2017"), data_dir)
        except ImportError:
            records = data.dataset_for(2017, data_dir)
        pipeline = data.pipeline_for(cfg, records)
        prepared = data.prepare_records(pipeline, records)
        lengths = np.array([pipeline.feature_length(s.shape[-1]) for s in prepared])
        tp = cfg.training_parameters
        batches = epoch_batches(np.asarray(records.targets), lengths, tp.batch_size, 0.0,
                                np.random.default_rng(0))[:n_batches]
        signals = {int(i): prepared[i] for i in np.concatenate(batches)}
        self.train = [self._tensors(pipeline, [signals[i] for i in b], records.targets, b, True) for b in batches]
        order = sorted(signals, key=lambda i: signals[i].shape[-1])
        self.infer = [self._tensors(pipeline, [signals[i] for i in order[k:k + EVAL_BATCH]], records.targets,
                                    order[k:k + EVAL_BATCH], False) for k in range(0, len(order), EVAL_BATCH)]
        torch.manual_seed(0)
        arch = get_architecture(cfg.model_name)
        self.model = arch.build(cfg.model_parameters, pipeline.inputs, 4, tp.drop_rate)
        self.stepper = optim.Stepper(self.model, tp, len(batches), 1, torch.device("cpu"))
        self.n_train = sum(len(b) for b in batches)
        self.n_infer = len(signals)

    @staticmethod
    def _tensors(pipeline, signals, targets, idx, train):
        import numpy as np
        import torch

        feats = pipeline.train_items(signals, None) if train else pipeline.eval_items(signals)
        x, lengths = pipeline.to_tensors(feats.batch(range(len(feats))), "cpu")
        return x, lengths, torch.as_tensor(np.asarray(targets)[list(idx)])

    def step(self, x, lengths, y):
        self.model.train()
        loss = self.torch.nn.functional.cross_entropy(self.model(x, lengths), y)
        self.stepper.step(loss)

    def predict(self, x, lengths, _y):
        self.model.eval()
        with self.torch.no_grad():
            self.model(x, lengths)

    def seconds(self, what: str) -> float:
        run, batches = (self.step, self.train) if what == "train" else (self.predict, self.infer)
        run(*batches[0])  # warm-up: first-call allocations and oneDNN set-up
        started = time.perf_counter()
        for batch in batches:
            run(*batch)
        return time.perf_counter() - started

    def gflop(self, what: str) -> float:
        from torch.utils.flop_counter import FlopCounterMode

        run, batches = (self.step, self.train) if what == "train" else (self.predict, self.infer)
        with FlopCounterMode(display=False) as counter:
            for batch in batches:
                run(*batch)
        return counter.get_total_flops() / 1e9


def matmul_seconds(size: int = 2048, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def worker(models_dir: Path, data_dir: str, n_batches: int) -> None:
    """Answer one JSON request per stdin line: {"model", "what"} -> seconds, GFLOP and records."""
    import torch

    import ecgcore.training.train  # noqa: F401  (sets oneDNN's primitive cache as a training process has it)

    torch.set_num_threads(1)
    benches = {}
    for line in sys.stdin:
        req = json.loads(line)
        if req["what"] == "matmul":
            out = {"seconds": matmul_seconds()}
        else:
            if req["model"] not in benches:
                benches[req["model"]] = Bench(models_dir, req["model"], data_dir, n_batches)
            bench = benches[req["model"]]
            key = "gflop" if req.get("flops") else "seconds"
            value = bench.gflop(req["what"]) if req.get("flops") else bench.seconds(req["what"])
            out = {key: value, "records": bench.n_train if req["what"] == "train" else bench.n_infer}
        print(json.dumps(out), flush=True)


# ---- parent side: schedules the workers and prints the table ----------------------------------------------------

class Worker:
    def __init__(self, checkout: Path, data_dir: str, n_batches: int, models_dir: Path | None = None):
        env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
        models_dir = (models_dir or checkout / "models").resolve()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", "--models-dir", str(models_dir),
             "--data", data_dir, "--batches", str(n_batches)],
            cwd=checkout, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, **req) -> dict:
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker failed on {req}")
        return json.loads(line)

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def single_lead_models(models_dir: Path) -> list[str]:
    """Model files of a CinC 2017 network: one lead, no grid or fine-tuning, trained by epochs."""
    from ecgcore.models import get_architecture

    names = []
    for path in sorted(models_dir.glob("*.json")):
        text = path.read_text()
        content = json.loads(text)
        if "grid" in text or content.get("preprocessing", {}).get("leads") or content.get("init_from"):
            continue
        arch = get_architecture(content["model_name"])
        if arch.input in ("signal", "spectrogram") and getattr(arch, "trainer", "epochs") == "epochs":
            names.append(path.stem)
    return names


def measure(workers: dict, models: list[str], repeats: int) -> dict:
    """Interleaved timings: per side, per model and kind, the median seconds, GFLOP and records."""
    results = {side: {"matmul": []} for side in workers}
    for rep in range(repeats):
        sides = list(workers) if rep % 2 == 0 else list(workers)[::-1]
        for side in sides:
            results[side]["matmul"].append(workers[side].ask(what="matmul")["seconds"])
        for model in models:
            for what in ("train", "infer"):
                for side in sides:
                    out = workers[side].ask(model=model, what=what)
                    entry = results[side].setdefault((model, what), {"seconds": [], "records": out["records"]})
                    entry["seconds"].append(out["seconds"])
        print(f"repeat {rep + 1}/{repeats} done", file=sys.stderr, flush=True)
    for side, worker_ in workers.items():
        for model in models:
            for what in ("train", "infer"):
                results[side][(model, what)]["gflop"] = worker_.ask(model=model, what=what, flops=True)["gflop"]
    return results


def table(results: dict, models: list[str]) -> str:
    sides = list(results)
    rows = []
    for side in sides:
        matmul = 2 * 2048 ** 3 / statistics.median(results[side]["matmul"]) / 1e9
        rows.append(f"{side}: one-thread 2048x2048 float32 matmul {matmul:.1f} GFLOPS")
    head = f"{'model':24s} {'kind':5s}" + "".join(f" {s + ' rec/s':>14s} {s + ' GFLOPS':>14s}" for s in sides)
    rows.append(head + ("   after/before" if len(sides) == 2 else ""))
    for model in models:
        for what in ("train", "infer"):
            line, rates = f"{model:24s} {what:5s}", []
            for side in sides:
                entry = results[side][(model, what)]
                seconds = statistics.median(entry["seconds"])
                rates.append(entry["records"] / seconds)
                line += f" {rates[-1]:14.1f} {entry['gflop'] / seconds:14.2f}"
            rows.append(line + (f"   {rates[1] / rates[0]:.2f}x" if len(sides) == 2 else ""))
    return "\n".join(rows)


def cpu_name() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="*", help="model file names (default: every single-lead one)")
    p.add_argument("--data", default=str(DATA), help="CinC 2017 records (default: the shared sample set)")
    p.add_argument("--batches", type=int, default=4, help="training batches per measurement")
    p.add_argument("--repeats", type=int, default=3, help="measurements per model; the median is shown")
    p.add_argument("--baseline", type=Path, help="another checkout to measure the same way, interleaved")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--models-dir", type=Path, default=ROOT / "models",
                   help="model files of this checkout (e.g. copies set to compute what the baseline's do)")
    args = p.parse_args()
    if args.worker:
        return worker(args.models_dir, args.data, args.batches)
    models = args.models or single_lead_models(ROOT / "models")
    print(f"CPU: {cpu_name()}; one thread per worker; {args.batches} training batches, median of {args.repeats}")
    workers = {"before": Worker(args.baseline.resolve(), args.data, args.batches)} if args.baseline else {}
    workers["after" if args.baseline else "now"] = Worker(ROOT, args.data, args.batches, args.models_dir)
    try:
        print(table(measure(workers, models, args.repeats), models))
    finally:
        for w in workers.values():
            w.close()


if __name__ == "__main__":
    main()
