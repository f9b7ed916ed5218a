"""Every command's --help ends with one example line, and the example is a command line that works.

In-process through the real parser: each subcommand (nested ones too) has
exactly one `example: python -m orchestrator ...` line, the parser accepts it
as that same command, the files it names are shipped, and the jobs,
architectures and dataset folders it names are those of the shipped job files.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex

import pytest

from orchestrator.cli import build_parser, main
from orchestrator.cli_args import EXAMPLES
from tests.conftest import ROOT

PREFIX = "example: python -m orchestrator "
JOB_FOLDER = re.compile(r"^(?:log/)?(\w+)/([\w.-]+?)(?:/fold\d+)?$")


def _subcommands(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()):
    for action in parser._actions:  # argparse offers no public walk over subparsers
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*words, name), sub
                yield from _subcommands(sub, (*words, name))


def _shipped() -> tuple[set[str], set[str], set[str]]:
    """The shipped jobs as ARCH/JOB, their architectures, and their dataset folders."""
    arch_of = {f.stem: json.loads(f.read_text())["model_name"] for f in (ROOT / "models").glob("*.json")}
    jobs, data = set(), set()
    for file in (ROOT / "jobs").glob("*.json"):
        for name, body in json.loads(file.read_text()).items():
            jobs.add(f"{arch_of[body['model']]}/{name}")
            data.add(body.get("data"))
    return jobs, set(arch_of.values()), data - {None}


COMMANDS = list(_subcommands(build_parser()))
JOBS, ARCHITECTURES, DATA = _shipped()


def test_every_command_has_an_example_and_every_example_a_command():
    words = {w for w, _ in COMMANDS}
    assert {("submit",), ("summarize",), ("data", "check"), ("docs", "reference")} <= words
    assert {tuple(key.split()) for key in EXAMPLES} == words


@pytest.mark.parametrize("words, sub", COMMANDS, ids=[" ".join(w) for w, _ in COMMANDS])
def test_help_ends_with_one_working_example(words, sub):
    examples = [line for line in sub.format_help().splitlines() if line.startswith("example: ")]
    assert len(examples) == 1 and examples[0].startswith(PREFIX), examples
    argv = shlex.split(examples[0].removeprefix(PREFIX))
    assert tuple(argv[:len(words)]) == words
    args = build_parser().parse_args(argv)  # an unknown option or a bad value exits here
    if sub.get_default("handler"):
        assert args.handler is sub.get_default("handler")
    for token in argv:
        if token.endswith((".json", ".yaml", ".yml")):
            assert (ROOT / token).is_file(), f"{token} is not a shipped file"
        elif token.startswith("data/"):
            assert token in DATA, f"{token} is no shipped job's dataset folder"
        elif (match := JOB_FOLDER.match(token)) and match[1] in ARCHITECTURES:
            assert f"{match[1]}/{match[2]}" in JOBS, f"{token} is no shipped job"
    if getattr(args, "architecture", None):
        assert args.architecture in ARCHITECTURES


def test_the_summarize_script_shows_the_example(capsys):
    """`summarize --help` (the console script) is `python -m orchestrator summarize --help`."""
    from orchestrator.cli import summarize_main

    with pytest.raises(SystemExit):
        summarize_main(["--help"])
    assert f"{PREFIX}summarize " in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["docs", "--help"])
    assert f"{PREFIX}docs reference" in capsys.readouterr().out
