"""python -m embedgui {train,eval,search,crawl,compose,bench} ..."""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> one-line help; each lives in embedgui/commands/<name>.py (imported lazily so --help is instant).
COMMANDS = {
    "train": "fine-tune an embedding model from a config.json",
    "eval": "score retrieval (recall@k, MRR@10, nDCG@10) of a model on a pairs file",
    "search": "query a corpus with a model and print the top hits",
    "crawl": "crawl glossary web pages into glossary.csv and pairs.jsonl",
    "compose": "turn a CSV/TSV/JSONL glossary into pairs.jsonl with hard negatives",
    "bench": "measure training speed",
}


def _available() -> dict[str, str]:
    return {name: text for name, text in COMMANDS.items() if importlib.util.find_spec(f"embedgui.commands.{name}")}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m embedgui", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands = _available()
    for name, text in commands.items():
        sub.add_parser(name, help=text, add_help=False)
    # Parse only the command name first, then let that command's module define its own arguments.
    if not argv or argv[0] not in commands:
        parser.parse_args(argv or ["--help"])
        return 2
    module = importlib.import_module(f"embedgui.commands.{argv[0]}")
    cmd_parser = argparse.ArgumentParser(prog=f"python -m embedgui {argv[0]}", description=commands[argv[0]])
    module.add_arguments(cmd_parser)
    args = cmd_parser.parse_args(argv[1:])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
