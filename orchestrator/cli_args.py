"""What the command line's parsers share: bounded number types, the track arguments, and each command's example.

Every subcommand's --help ends with one example command line (EXAMPLES),
written with shipped files and the demo's jobs so it can be run as it is
after `make demo`; tests/orchestrator/test_cli_help.py parses each one with
the real parser. Standard library only: `--help` must stay light.
"""

from __future__ import annotations

import argparse

from ecgcore.errors import ProjectError
from ecgcore.tracks import CHALLENGE_TRACKS, DEFAULT_TRACK, TRACKS

# One example per command, by its words after `python -m orchestrator` ("data synth": a nested command).
EXAMPLES = {
    "submit": "submit jobs/demo.json --max-epochs 2",
    "resume": "resume jobs/demo.json",
    "status": "status jobs/demo.json",
    "settings": "settings --settings orchestrator.example.yaml",
    "summarize": "summarize CNN --plot",
    "compare": "compare CNN/demo_cnn CRNN/demo_crnn",
    "report": "report CNN/demo_cnn CRNN/demo_crnn --out log/report.html",
    "predict": "predict --run log/CNN/demo_cnn --input data/synth2017 --output answers.csv",
    "ensemble": "ensemble log/CNN/demo_cnn",
    "score": "score --track cinc2017 --labels data/synth2017 --outputs answers.csv",
    "export": "export --run log/CNN/demo_cnn/fold0 --out export/demo_cnn",
    "split": "split data/synth2017 --folds 5 --tv 6 --seed 14",
    "data": "data synth --out data/synth2017 --records 300 --seed 0",
    "data synth": "data synth --out data/synth2017 --records 300 --seed 0",
    "data check": "data check data/synth2017 --split split_5_6_14",
    "data fetch": "data fetch cinc2017 --dest data",
    "docs": "docs reference --check",
    "docs reference": "docs reference --out docs/reference",
}


def add_examples(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()) -> None:
    """End the --help of every subcommand under parser (nested ones too) with its example line."""
    for action in parser._actions:  # argparse offers no public walk over subparsers
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            example = EXAMPLES[" ".join((*words, name))]
            sub.epilog = f"example: python -m orchestrator {example}"
            sub.formatter_class = argparse.RawDescriptionHelpFormatter  # one line, never re-wrapped
            add_examples(sub, (*words, name))


def at_least(minimum: float, kind: type = float, unit: str = ""):
    """An argparse type: a number of `kind` no smaller than minimum."""
    def parse(text: str):
        value = kind(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}{unit}, got {value}")
        return value
    parse.__name__ = kind.__name__  # argparse names it in "invalid int value: 'x'"
    return parse


positive_int = at_least(1, int)
non_negative_int = at_least(0, int)
non_negative_float = at_least(0.0)
cpus = at_least(0.01)  # as the job key cpus_per_task: a trial always runs on some CPU
at_least_one_second = at_least(1.0, unit=" second")


def track_arguments(p, what: str, default: str | None = DEFAULT_TRACK) -> None:
    """--track (with --challenge, its older spelling by year) and --option KEY=VALUE for the track's options."""
    p.add_argument("--track", choices=tuple(TRACKS), help=f"the dataset's track{what} (default: {default})")
    p.add_argument("--challenge", type=int, choices=tuple(CHALLENGE_TRACKS),
                   help="the older name of --track: 2017, 2020 or 2021")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a track option, as a job's track_options (PTB-XL: task=superdiagnostic; wfdb: "
                        "labels=labels.csv); a list value is comma-separated")


def track_of(args, default: str | None = DEFAULT_TRACK) -> str | None:
    if args.track and args.challenge is not None and CHALLENGE_TRACKS[args.challenge] != args.track:
        raise ProjectError(f"--challenge {args.challenge} is track {CHALLENGE_TRACKS[args.challenge]}, but --track "
                           f"is {args.track}")
    return args.track or CHALLENGE_TRACKS.get(args.challenge, default)


def options_of(args) -> dict:
    """--option KEY=VALUE pairs as track options: numbers as numbers, a comma-separated value as a list."""
    options = {}
    for item in args.option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ProjectError(f"--option {item!r}: expected KEY=VALUE")
        options[key] = [v.strip() for v in value.split(",")] if "," in value else \
            int(value) if value.isdigit() else value
    return options
