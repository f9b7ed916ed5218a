"""Command line: parse arguments, adapt them to options, call a command function.

Commands never see argparse. Every ProjectError becomes its message on
stderr and exit code 2; Ctrl-C exits with 130. A reader given a log folder,
job or fold folder as a URI (s3://...) runs on a local copy of the files it
reads (orchestrator.logdir.storage.mounted), and what it writes beside the
results (summary.json, plots, ensemble.json) goes back; its messages name the
URI, not the copy. Every subcommand's --help ends with one example command
line (orchestrator.cli_args.EXAMPLES).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ecgcore.errors import ProjectError
from ecgcore.tracks import CHALLENGE_TRACKS, DEFAULT_TRACK, TRACKS
from orchestrator.cli_args import (
    add_examples,
    at_least_one_second,
    cpus,
    non_negative_float,
    non_negative_int,
    options_of,
    positive_int,
    track_arguments,
    track_of,
)
from orchestrator.commands.summary_formats import FORMATS
from orchestrator.logdir.storage import run_on, run_on_fold_or_job  # stdlib only until a URI is met

LOG_DIR_HELP = ("the log folder: a path, or a URI on object storage (s3://bucket/prefix, gs://...; endpoint and "
                "credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...) (default: the settings' log_root, log)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m orchestrator",
                                     description="Cross-validated ECG training jobs on Ray Tune.")
    sub = parser.add_subparsers(dest="command", required=True)

    _submit_args(sub.add_parser("submit", help="run every job x fold of a job file as Ray Tune trials"), _submit)
    _submit_args(sub.add_parser("resume", help="continue an interrupted submit (= submit --resume)"), _submit)
    _status_args(sub.add_parser("status", help="per job and fold: pending, running, done or failed"))
    p = sub.add_parser("settings", help="every machine setting in force and where it came from")
    _settings_arg(p)
    p.set_defaults(handler=_settings)
    _summarize_args(sub.add_parser("summarize", help="cross-validation scores of every job of an architecture"))
    _compare_args(sub.add_parser("compare", help="does job B beat job A: paired tests over the same folds and "
                                                 "records"))
    _report_args(sub.add_parser("report", help="one self-contained HTML file: CV tables with intervals, "
                                               "comparisons, plots, provenance"))

    p = sub.add_parser("predict", help="classify records with a fold's or a job's models")
    p.add_argument("--run", required=True, help="a fold folder or a job folder under log/")
    p.add_argument("--input", required=True, help="folder of records (.hea with .mat or .dat, as the track reads)")
    p.add_argument("--output", required=True, help="the answers in the job's track's format (single label: "
                                                    "record,label lines; 12-lead: a folder of <record>.csv; "
                                                    "PTB-XL, multi-label files: one CSV)")
    p.set_defaults(handler=_predict)

    p = sub.add_parser("ensemble", help="score a job's fold models together on its split's hold-out part")
    p.add_argument("job_dir", help="a job folder, log/<arch>/<job>")
    p.set_defaults(handler=_ensemble)

    p = sub.add_parser("score", help="a track's metrics of predict's answers against the dataset's labels")
    p.add_argument("--labels", required=True, help="the labelled dataset folder (12-lead: .hea files, their #Dx "
                                                   "codes are the labels)")
    p.add_argument("--outputs", required=True, help="predict's answers (12-lead: the folder of <record>.csv "
                                                    "challenge output files)")
    p.add_argument("--year", type=int, choices=(2020, 2021), help="the older name of --track cinc2020/cinc2021")
    track_arguments(p, " whose metric scores", "cinc2021")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(handler=_score)

    p = sub.add_parser("export", help="a fold's model or a job's fold ensemble as ONNX, checked against PyTorch, "
                                      "with a sidecar and MODEL_CARD.md")
    p.add_argument("--run", required=True, help="a fold folder or a job folder under log/")
    p.add_argument("--out", required=True, help="folder for model.onnx, model.onnx.json and MODEL_CARD.md")
    p.add_argument("--format", dest="fmt", choices=("onnx",), default="onnx", help="file format (default: onnx)")
    p.add_argument("--records", help="folder of real records (.hea + .mat) to check the export on "
                                     "(default: the job's dataset)")
    p.set_defaults(handler=_export)

    _dataset_commands(sub)
    p = sub.add_parser("docs", help="documentation generated from the code")
    r = p.add_subparsers(dest="docs_command", required=True).add_parser(
        "reference", help="write docs/reference/*.md from the schema the loader validates against (imports torch)")
    r.add_argument("--out", default="docs/reference", help="the folder of the pages (default: docs/reference)")
    r.add_argument("--check", action="store_true", help="write nothing; exit 1 naming the pages that differ")
    r.set_defaults(handler=_docs_reference)
    add_examples(parser)
    return parser


def _submit_args(p: argparse.ArgumentParser, handler) -> None:
    p.set_defaults(handler=handler)
    p.add_argument("job_file")
    p.add_argument("--data", help="dataset folder for every job (default: the job's, else the settings' data_root)")
    p.add_argument("--log-dir", help=LOG_DIR_HELP)
    p.add_argument("--models-dir", help="model files (default: models/ beside the job file's folder)")
    p.add_argument("--max-epochs", type=positive_int, help="cap the epochs of every task (quick runs)")
    p.add_argument("--cpus-per-task", type=cpus, help="CPUs per fold (fractions allowed)")
    p.add_argument("--gpus-per-task", type=non_negative_float, help="GPUs per fold (fractions allowed)")
    p.add_argument("--time-limit", type=at_least_one_second, metavar="SECONDS",
                   help="stop each task's training after this long, then score its best model")
    p.add_argument("--max-concurrent", type=positive_int, help="folds running at once, at most")
    p.add_argument("--address", help="join an existing Ray cluster (auto, host:6379, ray://host:10001), or run "
                        "as a Ray job through its dashboard (http://head:8265)")
    p.add_argument("--quiet", action="store_true", help="no progress table or lines, only the closing summary")
    p.add_argument("--mlflow", metavar="URI", help="track each job as an MLflow run and each fold as its child run "
                                                   "at this tracking URI (sqlite:///mlflow.db, http://host:5000); "
                                                   "needs pip install '.[mlflow]'")
    p.add_argument("--dashboard-host",
                   help="where the local Ray dashboard listens (default 127.0.0.1; others get a warning)")
    p.add_argument("--dashboard-port", type=positive_int, help="the local Ray dashboard's port (default 8265 "
                                                                  "or the next free one)")
    _settings_arg(p)
    p.add_argument("--storage-path", help="Tune's experiment and checkpoints: a folder every node mounts or a "
                                          "URI (s3://...); required on a multi-node cluster (default: LOG/.tune)")
    p.add_argument("--dry-run", action="store_true", help="print the task table, start nothing")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted submit of this job file: finished folds are not run again")


def _settings_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", metavar="FILE", help="machine settings (YAML); default: $ECG_ORCH_SETTINGS, "
                                                      "else ./orchestrator.yaml if present")


def _status_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("job_file", nargs="?", help="only this job file's jobs and folds (default: every job under log/)")
    p.add_argument("--log-dir", help=LOG_DIR_HELP)
    p.add_argument("--all", action="store_true", help="every fold on its own line (default for many folds: counts "
                                                      "per job and state, and the running and failed folds)")
    _settings_arg(p)
    p.add_argument("--models-dir", help="model files (default: models/ beside the job file's folder)")
    p.set_defaults(handler=_status)


def _dataset_commands(sub) -> None:
    """The `split` and `data` commands."""
    p = sub.add_parser("split", help="write a stratified k-fold split into DATASET/splits/")
    p.add_argument("dataset")
    p.add_argument("--folds", type=positive_int, default=5)
    p.add_argument("--tv", type=positive_int, default=6, help="(train+valid)/valid, as in the reference")
    p.add_argument("--seed", type=int, default=14)
    p.add_argument("--out", help="write here instead of DATASET/splits/<name>/")
    p.add_argument("--holdout", action="store_true",
                   help="set 1/(folds+1) of each class aside for scoring the fold ensemble (name ends _holdout)")
    track_arguments(p, " that reads the labels (cinc2017: REFERENCE.csv; cinc2020/2021: the scored #Dx codes, "
                        "iterative stratification)")
    p.add_argument("--sources", action="store_true",
                   help="12-lead: leave-source-out, one fold per source database (name sources_<tv>_<seed>)")
    p.add_argument("--repeats", type=positive_int, default=1,
                   help="repeated CV: the split with seeds seed..seed+R-1, folds x R folds (name ..._r<R>)")
    p.set_defaults(handler=_split)

    p = sub.add_parser("data", help="dataset utilities")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    s = data_sub.add_parser("synth", help="write a synthetic dataset in a track's format (demo, tests)")
    s.add_argument("--out", required=True)
    s.add_argument("--records", type=positive_int, default=300)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--track", choices=tuple(TRACKS), help=f"whose format (default: {DEFAULT_TRACK}; cinc2017: single "
                                                          "lead N/A/O/~; cinc2020/2021: 12-lead with #Dx codes; "
                                                          "ptbxl: PTB-XL's layout)")
    s.add_argument("--challenge", type=int, choices=tuple(CHALLENGE_TRACKS), help="the older name of --track")
    s.set_defaults(handler=_synth)
    c = data_sub.add_parser("check", help="check a dataset folder: records load, headers agree with the samples, "
                                          "labels match the records, signal quality; exit 1 when anything is wrong")
    c.add_argument("dataset")
    track_arguments(c, " to check the folder as", "detected: cinc2017 with REFERENCE.csv, ptbxl with "
                                                     "ptbxl_database.csv, else cinc2021 for .hea files")
    c.add_argument("--split", help="also settle this split and report a patient in two of a fold's parts")
    c.set_defaults(handler=_check)
    f = data_sub.add_parser("fetch", help="download a training set (CinC 2017/2020/2021, PTB-XL), verify it, unpack it")
    f.add_argument("dataset", choices=("cinc2017", "cinc2020", "cinc2021", "ptbxl"))
    f.add_argument("--dest", default="data", help="folder the dataset folder goes into (default: data/)")
    f.add_argument("--base-url", help="a mirror holding the same files as the official source")
    f.set_defaults(handler=_fetch)


def _summarize_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("architecture", help="model_name of the jobs, e.g. CNN or CRNN")
    p.add_argument("--log-dir", help=LOG_DIR_HELP)
    p.add_argument("--all", action="store_true", help="every search variant's table and intervals (default: each "
                                                      "search's ranked top variants)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--plot", action="store_true", help="also write each job's learning curves and summed test "
                                                       "confusion matrix (PNG) beside summary.json")
    p.add_argument("--out", help="with --plot: write the PNGs into this folder instead (a log folder on object "
                                 "storage gets them beside summary.json otherwise)")
    _bootstrap_args(p, "intervals (0: none)")
    _settings_arg(p)
    p.set_defaults(handler=_summarize)


def _bootstrap_args(p: argparse.ArgumentParser, what: str, kind=non_negative_int) -> None:
    p.add_argument("--resamples", type=kind, default=1000,
                   help=f"bootstrap resamples of the pooled test records for the {what} (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="the bootstrap's seed (default 0)")


def _compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("jobs", nargs="+", metavar="JOB", help="job folders, or ARCH/JOB names under the log folder; "
                                                          "Δ = later - earlier")
    p.add_argument("--log-dir", help=LOG_DIR_HELP)
    p.add_argument("--per-class", action="store_true", help="multi-label jobs: every class's F1 too")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    _bootstrap_args(p, "paired Δ intervals", positive_int)
    _settings_arg(p)
    p.set_defaults(handler=_compare)


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("targets", nargs="+", metavar="ARCH|JOB", help="architectures (every job of each), job "
                                                                  "folders or ARCH/JOB names")
    p.add_argument("--out", required=True, help="the HTML file to write")
    p.add_argument("--screenshot", metavar="PNG", help="also render the report in headless Chromium to this PNG")
    p.add_argument("--log-dir", help=LOG_DIR_HELP)
    _bootstrap_args(p, "intervals")
    _settings_arg(p)
    p.set_defaults(handler=_report)


def _or(given, setting):
    """The command line's value where it gives one, else the settings' (command line > settings > defaults)."""
    return setting if given is None else given


def _submit_options(args: argparse.Namespace, s):
    from orchestrator.commands.submit import SubmitOptions
    from orchestrator.plan.expand import Overrides

    overrides = Overrides(data=args.data, max_epochs=args.max_epochs,
                          cpus_per_task=args.cpus_per_task, gpus_per_task=args.gpus_per_task,
                          time_limit_s=args.time_limit, mlflow_tracking_uri=args.mlflow)
    return SubmitOptions(job_file=args.job_file, models_dir=args.models_dir, log_dir=_or(args.log_dir, s.log_root),
                         overrides=overrides, address=_or(args.address, s.address),
                         max_concurrent=_or(args.max_concurrent, s.max_concurrent), dry_run=args.dry_run,
                         resume=args.resume or args.command == "resume",
                         storage_path=_or(args.storage_path, s.storage_path), quiet=args.quiet,
                         dashboard_host=_or(args.dashboard_host, s.dashboard_host),
                         dashboard_port=_or(args.dashboard_port, s.dashboard_port), settings=s)


# The command table: each subcommand's parser sets handler to one of these, called as handler(args, resolved).
# resolved: the machine settings and where each came from, for the commands that take --settings, else None. Each
# imports its command where it runs, so a light command never loads what a heavy one needs.

def _submit(args, resolved) -> int:
    from orchestrator.commands.submit import submit

    return submit(_submit_options(args, resolved.settings))


def _settings(args, resolved) -> int:
    from orchestrator.config.settings import report

    print(report(resolved))
    return 0


def _status(args, resolved) -> int:
    from orchestrator.commands.status import status

    print(run_on(_or(args.log_dir, resolved.settings.log_root),
                      lambda log, say: status(log, args.job_file, args.models_dir, full=args.all)))
    return 0


def _summarize(args, resolved) -> int:
    from orchestrator.commands.summarize import Bootstrap, summarize

    print(run_on(_or(args.log_dir, resolved.settings.log_root),
                      lambda log, say: summarize(log, args.architecture, args.format, plot=args.plot,
                                                 bootstrap=Bootstrap(args.resamples, args.seed), full=args.all,
                                                 plot_dir=args.out and Path(args.out).resolve()),
                      write_back=True, under=args.architecture))
    return 0


def _compare(args, resolved) -> int:
    from orchestrator.commands.compare import CompareOptions
    from orchestrator.commands.compare_render import compare

    opts = CompareOptions(resamples=args.resamples, seed=args.seed, per_class=args.per_class)
    print(run_on(_or(args.log_dir, resolved.settings.log_root),
                      lambda log, say: compare(log, args.jobs, opts, "json" if args.json else "table")))
    return 0


def _report(args, resolved) -> int:
    from orchestrator.commands.report import ReportOptions, report

    opts = ReportOptions(resamples=args.resamples, seed=args.seed, screenshot=args.screenshot)
    out = str(Path(args.out).resolve())  # the HTML is written here, not into a copy of the log folder
    print(run_on(_or(args.log_dir, resolved.settings.log_root),
                      lambda log, say: report(log, args.targets, out, opts)))
    return 0


def _predict(args, resolved) -> int:
    from orchestrator.commands.predict import predict

    return run_on_fold_or_job(args.run, lambda run, say: predict(run, args.input, args.output, say))


def _ensemble(args, resolved) -> int:
    from orchestrator.commands.ensemble import ensemble

    return run_on(args.job_dir, lambda job_dir, say: ensemble(job_dir, say), models=True, write_back=True)


def _score(args, resolved) -> int:
    from orchestrator.commands.score import score

    track = track_of(args, "cinc2021") if args.year is None else CHALLENGE_TRACKS[args.year]
    return score(args.labels, args.outputs, track, options_of(args), args.json)


def _export(args, resolved) -> int:
    from orchestrator.commands.export import export

    return run_on_fold_or_job(args.run, lambda run, say: export(run, args.out, args.fmt, args.records, say))


def _split(args, resolved) -> int:
    from orchestrator.datatools.generate import write_split_command

    return write_split_command(args.dataset, args.folds, args.tv, args.seed, args.out, args.holdout,
                               track_of(args), args.sources, args.repeats, options_of(args))


def _synth(args, resolved) -> int:
    from orchestrator.datatools.generate import synth_command

    return synth_command(args.out, args.records, args.seed, args.track or CHALLENGE_TRACKS.get(args.challenge,
                                                                                              DEFAULT_TRACK))


def _check(args, resolved) -> int:
    from orchestrator.datatools.check import check_command

    return check_command(args.dataset, track_of(args, None), options_of(args), args.split)


def _fetch(args, resolved) -> int:
    from orchestrator.datatools.fetch import fetch_command

    return fetch_command(args.dataset, args.dest, args.base_url)


def _docs_reference(args, resolved) -> int:
    from orchestrator.commands.docs import reference

    return reference(args.out, args.check)


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command, with the machine settings where it takes --settings."""
    resolved = None
    if hasattr(args, "settings"):
        from orchestrator.config.settings import load_settings

        resolved = load_settings(args.settings)
    return args.handler(args, resolved)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Data warnings are for users: the message, not the source line that raised it."""
    return f"warning: {message}\n"


def run(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    args = parser.parse_args(argv)
    warnings.formatwarning = _one_line_warning
    try:
        return dispatch(args)
    except ProjectError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    return run(build_parser(), argv)


def summarize_main(argv: list[str] | None = None) -> int:
    """The `summarize` console script: `summarize CNN` = `python -m orchestrator summarize CNN`."""
    argv = sys.argv[1:] if argv is None else argv
    return main(["summarize", *argv])
