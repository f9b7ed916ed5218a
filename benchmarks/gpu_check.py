"""Benchmark: prove the GPU paths on one GPU machine (H100/H200, 16 cores) in under 10 minutes (issue 16).

    .venv/bin/python benchmarks/gpu_check.py --dry-run    # any machine: what would run; starts nothing, imports no Ray
    python benchmarks/gpu_check.py [--data ../shared/ecg-data/training2017] [--steps forward_backward throughput]

Steps, each guarded (a failure is recorded, the next runs): environment; forward_backward (each registered network
in float32 and autocast float16 / bfloat16 on CUDA: differences to float32, ms/batch); throughput (training rec/s,
AMP off / on); packing (5 folds of CNN_small and GlobalSkipNet_but at --gpus-per-task 0.2 and 1: wall times, GPU
use; goal packed >= 3x faster); ddp (a fold, 2 workers sharing the GPU). Writes and prints gpu_check.json (per step:
status ok / failed / skipped, reason, numbers, seconds) and gpu_check.md (tables for docs/benchmarks.md). Exit 0;
1 if a step failed; 2 without a visible GPU (then only the environment step runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import itertools
import json
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]  # a bare GPU machine has the checkout, no installed package

STEPS = ("environment", "forward_backward", "throughput", "packing", "ddp")
# The model file checked per architecture (its smallest); an architecture added later gets its first single-lead one.
PREFERRED = {"CNN": "CNN_small", "CRNN": "CRNN_small", "ResNet1d": "ResNet1d_ribeiro", "SEResNet18": "SEResNet18_dsail",
             "GlobalSkipNet": "GlobalSkipNet_but", "ECGDualNet": "ECGDualNet_S"}
PACK_MODELS, PACK_GPUS, SPLIT, FOLDS = ("CNN_small", "GlobalSkipNet_but"), (0.2, 1.0), "split_5_6_14", [0, 1, 2, 3, 4]
SMI_SAMPLE = ["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-l", "1"]
STEP_BUDGET_S, WARMUP, ITERS, BATCHES, TRAIN_STEPS, LOSS_SCALE = 120.0, 3, 5, 16, 200, 4096.0


class Skip(Exception):
    """A step that cannot run here; the message says why."""


class Context:
    def __init__(self, args):
        self.args, self.deadline, self.benches = args, time.monotonic() + args.budget, {}
        self.work = Path(tempfile.mkdtemp(prefix="gpu_check_"))  # job files, fold logs; removed at the end

    def bench(self, name: str):
        """throughput.Bench of a model file (batches, model, optimiser; on the CPU), built once for both steps."""
        import throughput
        if name not in self.benches:
            self.benches[name] = throughput.Bench(ROOT / "models", name, bench_data(self.args), BATCHES)
        return self.benches[name]


def bench_data(args) -> str:
    """Records the batches are cut from: benchmarks/throughput.py's (the shared 800-record sample set), else --data."""
    import throughput
    return str(throughput.DATA if (throughput.DATA / "REFERENCE.csv").is_file() else args.data)


def model_files() -> tuple[dict[str, str], dict[str, str]]:
    """{model file: architecture} to check, and {architecture: why not} for the registered ones left out."""
    import throughput

    from ecgcore.models import get_architecture, known_architectures

    by_arch: dict[str, list[str]] = {}
    for name in throughput.single_lead_models(ROOT / "models"):
        by_arch.setdefault(json.loads((ROOT / "models" / f"{name}.json").read_text())["model_name"], []).append(name)
    return {PREFERRED[a] if PREFERRED.get(a) in by_arch[a] else by_arch[a][0]: a for a in sorted(by_arch)}, {
        a: f"{get_architecture(a).trainer} trainer on {get_architecture(a).input} input: no network trained by epochs"
        for a in known_architectures() if a not in by_arch}


def need_cuda(args=None):
    """Raise Skip without a GPU, and with args without ray or the training set; return torch, or that set's path."""
    import torch
    if not torch.cuda.is_available():
        raise Skip("no GPU visible (torch.cuda.is_available() is False)")
    if args is not None and importlib.util.find_spec("ray") is None:  # locates ray without importing it
        raise Skip("ray is not installed in this Python: `submit` cannot run")
    if args is not None and not (Path(args.data) / "REFERENCE.csv").is_file():
        raise Skip(f"no CinC 2017 training set at {args.data} (no REFERENCE.csv); pass --data")
    return torch if args is None else str(Path(args.data).resolve())


def environment(ctx) -> dict:
    import torch
    cuda, smi = torch.cuda.is_available(), shutil.which("nvidia-smi")
    devices = [f"{p.name} ({p.total_memory / 2**30:.1f} GiB)" for p in
               map(torch.cuda.get_device_properties, range(torch.cuda.device_count() if cuda else 0))]
    out = {"python": sys.version.split()[0], "torch": torch.__version__, "cuda_available": cuda, "devices": devices,
           "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None,
           "cpu_count": os.cpu_count(), "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
           # float32 convolutions run as TF32 unless switched off: part of any float32 difference on the GPU
           "tf32_conv": torch.backends.cudnn.allow_tf32, "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
           "nvidia_smi": smi and subprocess.run([smi, "--query-gpu=name,driver_version,memory.total,memory.used,"
                                                 "utilization.gpu", "--format=csv,noheader"],
                                                capture_output=True, text=True, timeout=30).stdout.strip()}
    return {**out, "result": f"{', '.join(devices) or 'no GPU'}; torch {out['torch']}, CUDA {out['cuda']}, "
                             f"cuDNN {out['cudnn']}, {out['cpu_count']} CPUs"}


def cuda_seconds(torch, fn, n: int) -> float:
    for _ in range(WARMUP):  # cuDNN's algorithm choice and the allocator's first blocks stay out of the timing
        fn()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(n):
        fn()
    torch.cuda.synchronize()
    return time.perf_counter() - started


def one_pass(torch, model, batch, dtype, stepper=None) -> tuple | None:
    """Forward, loss and backward; with a stepper (a training step) its loss scaling and optimiser step too."""
    torch.manual_seed(0)  # the same dropout masks in every precision, so the differences are rounding alone
    with torch.autocast("cuda", dtype=dtype or torch.float16, enabled=dtype is not None):
        logits = model(*batch[:2])
    loss = torch.nn.functional.cross_entropy(logits.float(), batch[2])
    if stepper is not None:
        return stepper.step(loss)  # zero_grad, scaled backward, step, schedule: as in the training loop
    model.zero_grad(set_to_none=True)
    (loss * LOSS_SCALE).backward()  # scaled as by GradScaler, or float16 gradients underflow; exact in float32
    return logits.detach().float(), loss.detach(), [p.grad for p in model.parameters() if p.grad is not None]


def compare_precisions(torch, bench) -> dict:
    model, (x, lengths, y) = bench.model.eval(), bench.train[0]
    with torch.no_grad():  # eval mode (deterministic): CPU and GPU agree up to rounding and TF32; then train mode
        cpu_out, batch = model(x, lengths), tuple(t.cuda() for t in (x, lengths, y))
        cuda_out = model.cuda()(*batch[:2]).cpu()
    out = {"parameters": sum(p.numel() for p in model.train().parameters()), "batch": list(x.shape),
           "cpu_vs_cuda_max_abs": (cpu_out - cuda_out).abs().max().item(),
           "ms": {}, "max_abs_out": {}, "loss_diff": {}, "grad_rel": {}}
    bf16 = {"bfloat16": torch.bfloat16} if torch.cuda.is_bf16_supported() else {}
    for label, dtype in {"float32": None, "float16": torch.float16, **bf16}.items():
        logits, loss, grads = one_pass(torch, model, batch, dtype)
        grads = torch.cat([g.flatten().float() for g in grads]) / LOSS_SCALE
        seconds = cuda_seconds(torch, lambda d=dtype: one_pass(torch, model, batch, d), ITERS)
        out["ms"][label] = round(seconds / ITERS * 1000, 3)
        if dtype is None:
            ref = logits, loss, grads
            continue
        out["max_abs_out"][label] = (logits - ref[0]).abs().max().item()
        out["loss_diff"][label] = (loss - ref[1]).abs().item()
        out["grad_rel"][label] = ((grads - ref[2]).norm() / ref[2].norm().clamp_min(1e-30)).item()
    return out


def train_rates(torch, bench) -> dict:
    from ecgcore.training import optim
    model, batches = bench.model.cuda().train(), [tuple(t.cuda() for t in b) for b in bench.train]
    records = sum(len(batches[(WARMUP + i) % len(batches)][2]) for i in range(TRAIN_STEPS))  # the timed steps'
    torch.cuda.reset_peak_memory_stats()
    out = {}
    for dtype in (None, torch.float16):  # the model file's optimiser; AMP off, then on (float16, loss scaling)
        s = optim.Stepper(model, dataclasses.replace(bench.stepper.tp, amp=bool(dtype)), len(batches), 1,
                          torch.device("cuda"))
        step = lambda s=s, d=dtype, it=itertools.cycle(batches): one_pass(torch, model, next(it), d, s)  # noqa: E731
        out["amp" if dtype else "float32"] = round(records / cuda_seconds(torch, step, TRAIN_STEPS), 1)
    return {**out, "amp_speedup": round(out["amp"] / out["float32"], 2), "steps": TRAIN_STEPS,
            "max_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)}


def per_model(ctx, measure) -> dict:
    """measure(torch, bench) for every model file; one model's failure is its row, not the step's end."""
    torch = need_cuda()
    (chosen, left_out), rows, deadline = model_files(), {}, min(time.monotonic() + STEP_BUDGET_S, ctx.deadline)
    for name, arch in chosen.items():
        try:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not run: the step's {STEP_BUDGET_S:g} s were up")
            rows[name] = {"architecture": arch, **measure(torch, ctx.bench(name))}
        except Exception as exc:  # recorded per model
            rows[name] = {"architecture": arch, "error": f"{type(exc).__name__}: {exc}"}
    bad = [f"{n} ({r['error']})" for n, r in rows.items() if "error" in r]
    return {"status": "failed" if bad else "ok", "reason": f"failed or not run: {', '.join(bad)}" if bad else "",
            "result": f"{len(rows) - len(bad)}/{len(rows)} model files; batches from {bench_data(ctx.args)}",
            "models": rows, "not_checked": left_out}


def jobs(tag: str, models, folds, work: Path | None = None, **extra) -> tuple[Path, dict]:
    """A job file's path and content; written to work/jobs_<tag>.json when work is given (else named in TMP/)."""
    content = {f"{tag}_{m}": {"model": m, "split": SPLIT, "cvids": folds, "log_en": False, **extra} for m in models}
    if work is not None:
        (work / f"jobs_{tag}.json").write_text(json.dumps(content, indent=2))
    return (work or Path("TMP")) / f"jobs_{tag}.json", content


def submit_command(args, job_file, log_dir, gpus: float | None, data) -> list[str]:
    cmd = [sys.executable, "-m", "orchestrator", "submit", str(job_file), "--data", str(data), "--models-dir",
           str(ROOT / "models"), "--log-dir", str(log_dir), "--max-epochs", str(args.pack_epochs),
           "--time-limit", f"{args.time_limit:g}", "--cpus-per-task", f"{args.cpus_per_task:g}", "--quiet"]
    return cmd + ([] if gpus is None else ["--gpus-per-task", f"{gpus:g}"])


def timed_submit(cmd: list[str], log_dir: Path, names, expected: int, timeout: float) -> dict:
    """Run a submit with nvidia-smi sampling beside it; its wall time, GPU use and the folds' scores.json."""
    smi_file, exe, smi = log_dir.parent / f"smi_{next(iter(names))}.csv", shutil.which("nvidia-smi"), None
    if exe:
        with open(smi_file, "w") as fh:
            smi = subprocess.Popen([exe, *SMI_SAMPLE], stdout=fh, stderr=subprocess.DEVNULL)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    started = time.monotonic()  # its own session: a run past its time is stopped with every process it started
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, timed_out = proc.communicate(timeout=max(1.0, timeout))[0], False
    except subprocess.TimeoutExpired:  # Ray's processes are in that session too, and share the driver's fate
        os.killpg(proc.pid, signal.SIGKILL)
        output, timed_out = proc.communicate()[0], True
    wall_s = round(time.monotonic() - started, 1)
    if smi is not None:  # Ctrl-C ends nvidia-smi's loop cleanly, its output flushed (a SIGTERM could lose it)
        smi.send_signal(signal.SIGINT)
        smi.wait(timeout=10)
    fields = [line.split(",") for line in (smi_file.read_text().splitlines() if smi_file.exists() else [])]
    rows = [tuple(map(float, f)) for f in fields  # "[N/A]" and cut-off lines skipped
            if len(f) == 2 and all(v.strip().replace(".", "", 1).isdigit() for v in f)]
    scores = [json.loads(p.read_text()) for n in names for p in sorted(log_dir.glob(f"*/{n}/fold*/scores.json"))]
    return {"command": shlex.join(cmd), "exit": proc.returncode, "timed_out": timed_out, "wall_s": wall_s,
            "gpu": {"samples": len(rows), "util_mean": round(statistics.mean(r[0] for r in rows), 1),
                    "util_max": max(r[0] for r in rows), "memory_max_mib": max(r[1] for r in rows)} if rows else None,
            "folds": {"finished": len(scores), "expected": expected,
                      "median_fold_s": round(statistics.median(s["elapsed_s"] for s in scores), 1) if scores else None,
                      **{k: sorted({s[k] for s in scores}) for k in ("stop_reason", "epochs_run", "device")}},
            "output_tail": output[-2000:] if proc.returncode else ""}


def packing(ctx) -> dict:
    from orchestrator.commands.submit import SubmitOptions, plan
    from orchestrator.plan.datasets import prepare_data
    from orchestrator.plan.expand import Overrides

    data, log_dir, runs, started = need_cuda(ctx.args), ctx.work / "log", {}, time.monotonic()
    # The data set preprocessed once into the log folder's cache, which both runs then read: neither pays for it.
    _, tasks = plan(SubmitOptions(job_file=str(jobs("warm", PACK_MODELS, FOLDS, ctx.work)[0]), log_dir=str(log_dir),
                                  models_dir=str(ROOT / "models"), overrides=Overrides(data=data)), ROOT)
    prepare_data(tasks, log_dir / ".cache", lambda text: None)
    cache_s = round(time.monotonic() - started, 1)
    for gpus in PACK_GPUS:  # packed first: the 1-GPU run is the long one, and when cut it still bounds the ratio
        job_file, content = jobs("gpu" + f"{gpus:g}".replace(".", ""), PACK_MODELS, FOLDS, ctx.work)
        timeout = ctx.deadline - time.monotonic() - (90 if "ddp" in ctx.args.steps else 20)  # the ddp fold's share
        runs[f"{gpus:g}"] = timed_submit(submit_command(ctx.args, job_file, log_dir, gpus, data), log_dir, content,
                                         len(content) * len(FOLDS), timeout)
    ratio, ran = runs["1"]["wall_s"] / runs["0.2"]["wall_s"], all(r["exit"] == 0 for r in runs.values())
    equal = all(r["folds"]["stop_reason"] == ["max_epochs"] and r["folds"]["finished"] == r["folds"]["expected"]
                for r in runs.values())
    return {"cache_s": cache_s, "runs": runs, "speedup": round(ratio, 2), "goal_met": ratio >= 3, "equal_work": equal,
            "status": "ok" if ran and equal else "failed",
            "reason": "" if ran and equal else "a run failed or was cut: the ratio is a bound" if not ran
            else "the time limit cut folds: the runs did not do the same work",
            "result": f"packed {ratio:.2f}x faster (goal >= 3: {'met' if ratio >= 3 else 'not met'})"}


def ddp(ctx) -> dict:
    data, log_dir = need_cuda(ctx.args), ctx.work / "log"
    job_file, content = jobs("ddp", PACK_MODELS[:1], [0], ctx.work, workers_per_task=2, gpus_per_worker=0.5)
    run = timed_submit(submit_command(ctx.args, job_file, log_dir, None, data), log_dir, content, 1,
                       ctx.deadline - time.monotonic())
    replicas = [json.loads(p.read_text()).get("replicas", {}) for p in log_dir.glob("*/ddp*/fold*/scores.json")]
    identical = bool(replicas) and all(r.get("identical") for r in replicas)
    ok = run["exit"] == 0 and run["folds"]["finished"] == 1 and identical
    return {"status": "ok" if ok else "failed", "reason": "" if ok else "the 2-worker fold did not finish with "
            "identical weights on both ranks", **run, "replicas": replicas,
            "result": f"exit {run['exit']}, {run['wall_s']} s, on {run['folds']['device']}, ranks identical: "
                      f"{identical}"}


STEP_FUNCS = {"environment": environment, "forward_backward": lambda ctx: per_model(ctx, compare_precisions),
              "throughput": lambda ctx: per_model(ctx, train_rates), "packing": packing, "ddp": ddp}


def run_step(name: str, ctx) -> dict:
    started = time.monotonic()
    try:
        if time.monotonic() > ctx.deadline:
            raise Skip(f"the {ctx.args.budget:g} s budget was spent before this step")
        entry = {"status": "ok", "reason": "", **STEP_FUNCS[name](ctx)}
    except Skip as exc:
        entry = {"status": "skipped", "reason": str(exc)}
    except Exception as exc:  # a broken step is a result: record it and go on
        entry = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    entry["seconds"] = round(time.monotonic() - started, 1)
    print(f"[{name}] {entry['status']} in {entry['seconds']} s {entry['reason']}".rstrip(), flush=True)
    return entry


def table(header: str, rows: list[list]) -> list[str]:
    return ["", f"| {header} |", "|---" * (header.count("|") + 1) + "|",
            *("| " + " | ".join(map(str, row)) + " |" for row in rows)] if rows else []


def markdown(results: dict) -> str:
    fb, tr = (results.get(s, {}).get("models", {}) for s in ("forward_backward", "throughput"))
    pair = lambda d: " / ".join(f"{v:.2g}" for v in d.values()) or "-"  # noqa: E731 - the fp16 / bf16 columns
    models = []
    for name in dict.fromkeys([*fb, *tr]):
        f, t = fb.get(name, {}), tr.get(name, {})
        models.append([name, f.get("architecture") or t.get("architecture"),
                       " / ".join(f"{v:.2f}" for v in f.get("ms", {}).values()) or f.get("error", "-"),
                       pair(f.get("max_abs_out", {})), pair(f.get("loss_diff", {})), pair(f.get("grad_rel", {})),
                       f"{f['cpu_vs_cuda_max_abs']:.2g}" if f.get("ms") else "-", t.get("float32", "-"),
                       t.get("amp", "-"), t.get("amp_speedup", t.get("error", "-"))])
    packed = [[g, f"{r['exit']}{' (cut)' * r['timed_out']}", r["wall_s"], f"{r['folds']['finished']}/"
               f"{r['folds']['expected']}", r["folds"]["median_fold_s"], *(f"{(r['gpu'] or {}).get(k, '-')}" for k in
               ("util_mean", "util_max", "memory_max_mib")), ", ".join(r["folds"]["stop_reason"])]
              for g, r in results.get("packing", {}).get("runs", {}).items()]
    return "\n".join([f"gpu_check, {time.strftime('%Y-%m-%d')}: `{shlex.join(sys.argv)}`", *table(
        "step | status | seconds | result",
        [[n, e["status"], e["seconds"], e.get("result") or e["reason"]] for n, e in results.items()]), *table(
        "model file | architecture | ms/batch fp32 / fp16 / bf16 | max abs Δ out fp16 / bf16 | Δ loss fp16 / bf16 | "
        "grad rel. Δ fp16 / bf16 | CPU-CUDA Δ | train rec/s fp32 | AMP | AMP/fp32", models), *table(
        "GPUs per task | exit | wall s | folds | median fold s | GPU util mean % | max % | GPU memory max MiB | "
        "stopped by", packed)]) + "\n"


def dry_run(args) -> str:
    """What each step would run; imports torch, the model registry and the job schema, never Ray."""
    from ecgcore.config.modelfile import parse_model
    from ecgcore.models import get_architecture

    chosen, left_out = model_files()
    missing = [what for what, ok in (("no data", (Path(args.data) / "REFERENCE.csv").is_file()),
                                     ("no ray", importlib.util.find_spec("ray"))) if not ok]
    lines = [f"gpu_check --dry-run: nothing is started. On a GPU machine, within {args.budget:g} s:", "",
             f"environment: python, torch, CUDA, cuDNN, devices, memory, nvidia-smi, CPUs ({os.cpu_count()} here)", "",
             f"forward_backward: one training batch per model file from {bench_data(args)}; CUDA forward + backward "
             f"in float32, float16, bfloat16 (if supported), {WARMUP} warm-up + {ITERS} timed passes each"]
    for name, arch in chosen.items():
        tp = parse_model(json.loads((ROOT / "models" / f"{name}.json").read_text()), name).training_parameters
        lines.append(f"  {name:<18} {arch:<14} {get_architecture(arch).input} input, batch {tp.batch_size}")
    lines += [f"  not checked: {arch} ({why})" for arch, why in left_out.items()] + [
        "", f"throughput: the same model files, {TRAIN_STEPS} training steps with AMP off and on over {BATCHES} "
            f"batches; each of the two steps at most {STEP_BUDGET_S:g} s", "",
        f"packing: jobs {', '.join(PACK_MODELS)} x folds {FOLDS} of {SPLIT} on {args.data}"
        f"{' (here: ' + ', '.join(missing) + ')' if missing else ''}; dataset cache warmed first; {args.pack_epochs} "
        f"epoch(s) per fold, {args.time_limit:g} s cap; nvidia-smi {' '.join(SMI_SAMPLE)} during each run; goal: "
        "packed >= 3x faster"]
    for gpus in PACK_GPUS:
        job_file, content = jobs("gpu" + f"{gpus:g}".replace(".", ""), PACK_MODELS, FOLDS)
        lines.append(f"  {gpus:g} GPU/task: " + shlex.join(submit_command(args, job_file, "TMP/log", gpus, args.data)))
    lines += [f"  {job_file}: {json.dumps(content)}", ""]
    job_file, content = jobs("ddp", PACK_MODELS[:1], [0], workers_per_task=2, gpus_per_worker=0.5)
    return "\n".join(lines + [f"ddp: {job_file}: {json.dumps(content)}",
                              "  " + shlex.join(submit_command(args, job_file, "TMP/log", None, args.data))])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dry-run", action="store_true", help="list what each step would run; start nothing")
    p.add_argument("--steps", nargs="+", choices=STEPS, default=list(STEPS), help="a subset (environment always runs)")
    p.add_argument("--out-dir", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_check")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "ecg-data" / "training2017",
                   help="the full CinC 2017 training set (packing, ddp; forward_backward and throughput without "
                        "the shared sample set)")
    p.add_argument("--budget", type=float, default=570, help="seconds for everything; a step past it is skipped")
    p.add_argument("--pack-epochs", type=int, default=1, help="epochs per fold in packing and ddp: the same work")
    p.add_argument("--time-limit", type=float, default=45, help="submit --time-limit per fold: only a cap")
    p.add_argument("--cpus-per-task", type=float, default=max(1, ((os.cpu_count() or 1) - 1) // 5),
                   help="per fold; default: 5 packed folds use all cores but one (left to the driver and Ray)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.dry_run:
        return print(dry_run(args)) or 0
    ctx = Context(args)
    try:
        results = {"environment": run_step("environment", ctx)}
        gpu = results["environment"].get("cuda_available")
        results.update({n: run_step(n, ctx) if gpu else {"status": "skipped", "reason": "no GPU visible", "seconds": 0}
                        for n in args.steps if n != "environment"})
    finally:
        shutil.rmtree(ctx.work, ignore_errors=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    doc = {"command": shlex.join(sys.argv), "date": time.strftime("%Y-%m-%d %H:%M"), "steps": results}
    (args.out_dir / "gpu_check.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    (args.out_dir / "gpu_check.md").write_text(text := markdown(results))
    not_done = [f"  {n}: {e['status']}: {e['reason']}" for n, e in results.items() if e["status"] != "ok"]
    print(f"\n{text}\nwrote {args.out_dir}/gpu_check.json and gpu_check.md\n"
          + ("could not do:\n" + "\n".join(not_done) if not_done else "every step ran")
          + ("" if gpu else "\nno GPU visible: torch.cuda.is_available() is False here; only the environment step ran"))
    return 2 if not gpu else 1 if any(e["status"] == "failed" for e in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
