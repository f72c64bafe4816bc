"""python -m embedgui eval --model-dir DIR --pairs FILE [--device auto] [--json OUT] [--compare-with BASE]"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from ..engine.errors import USER_ERRORS
from ..engine.evaluate import DEFAULT_KS, EvalOptionError, compare, evaluate_model, format_metrics
from ..engine.files import atomic_write_text, ensure_writable_file
from . import positive_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", required=True, metavar="DIR",
                        help="model folder written by train, or any model id/folder (the evaluated model)")
    parser.add_argument("--pairs", required=True, metavar="FILE", help="pairs.jsonl with anchor/positive rows")
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu (default: auto)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="texts per encoding batch (default 64)")
    parser.add_argument("--k", type=positive_int, nargs="+", default=list(DEFAULT_KS), metavar="K",
                        help="recall cut-offs (default: 1 5 10); MRR and nDCG are always @10")
    parser.add_argument("--no-distractors", action="store_true",
                        help="leave hard negatives out of the corpus (default: they join it as distractors)")
    parser.add_argument("--compare-with", metavar="BASE",
                        help="also score this model (e.g. the base model) and print a before/after table")
    parser.add_argument("--max-length", type=positive_int, default=None,
                        help="token limit per text (default: the model folder's setting, else 256)")
    parser.add_argument("--dim", type=positive_int, default=None,
                        help="score only the first DIM embedding components, re-normalised (a Matryoshka size)")
    parser.add_argument("--skip-invalid", action="store_true", help="skip bad lines in the pairs file")
    parser.add_argument("--trust-remote-code", action="store_true", default=None,
                        help="let models that ship their own code run it on this machine (only for models you "
                             "trust; default: a run folder's hf.trust_remote_code, else no)")
    parser.add_argument("--json", metavar="OUT", help="also write the results to this JSON file")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    options = {"device": args.device, "batch_size": args.batch_size, "ks": args.k, "max_length": args.max_length,
               "hard_negatives_as_distractors": not args.no_distractors, "skip_invalid": args.skip_invalid,
               "dim": args.dim, "trust_remote_code": args.trust_remote_code}
    try:
        if args.json:  # before computing anything: a wrong path should not cost the whole evaluation
            ensure_writable_file(args.json, "--json")
        if args.compare_with:
            result = compare(args.model_dir, args.compare_with, args.pairs, **options)
            info, payload = result.after, result.to_dict()
            text = f"before: {result.before.model}\nafter:  {result.after.model}\n\n{result.table()}"
        else:
            info = evaluate_model(args.model_dir, args.pairs, **options)
            payload, text = info.to_dict(), format_metrics(info.metrics)
        distractors = "with" if info.distractors else "without"
        print(f"{info.queries} queries, {info.corpus} corpus texts ({distractors} hard negatives as distractors)"
              + (f", {len(info.skipped)} invalid line(s) skipped" if info.skipped else ""), file=sys.stderr)
        print(text)
        if args.json:
            atomic_write_text(args.json, json.dumps(payload, indent=2) + "\n")
    except (*USER_ERRORS, EvalOptionError) as e:
        models = "--model-dir, --compare-with" if args.compare_with else "--model-dir"
        print(f"error: {in_flags(str(e), models)}", file=sys.stderr)
        return 2
    return 0


# The engine's sentences name config fields (training's words); here the same settings are this command's flags.
_FIELDS_AS_FLAGS = (("model_id: ", ""), ("set data.skip_invalid to true", "pass --skip-invalid"),
                    ("Set model_id to a local model folder", "Give a local model folder ({models})"),
                    ("check data.pairs_path", "check --pairs"),
                    ("set hf.trust_remote_code to true", "pass --trust-remote-code"))


def in_flags(message: str, models: str = "--model-dir, --compare-with") -> str:
    """The engine's sentence in this command's words; models: the flags that name a model here."""
    for field, flag in _FIELDS_AS_FLAGS:
        message = message.replace(field, flag.format(models=models))
    return message
