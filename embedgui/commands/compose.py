"""python -m embedgui compose --input glossary.csv --output pairs.jsonl --hard-k 3"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from embedgui.engine.compose import DEFAULT_MAX_LENGTH, ComposeOptions, compose
from embedgui.engine.errors import USER_ERRORS
from embedgui.engine.mining import NEAR_DUPLICATE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Define the compose command's flags."""
    parser.epilog = "Details: docs/compose.md"
    io = parser.add_argument_group("files")
    io.add_argument("--input", required=True, help="CSV, TSV or JSONL file (glossary or anchor/positive pairs)")
    io.add_argument("--output", required=True, help="pairs.jsonl to write (training rows)")
    io.add_argument("--encoding", help="input encoding (default: detect UTF-8, UTF-8 with BOM, CP949/EUC-KR)")
    io.add_argument("--delimiter", help="CSV delimiter: a character or tab/comma/semicolon/pipe (default: detect)")
    io.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                    help="whether the first row is a header (default: detect)")
    cols = parser.add_argument_group("columns (default: detected from the header names)")
    cols.add_argument("--anchor-column", help="column of anchors (terms, questions, queries): name or 1-based number")
    cols.add_argument("--positive-column", help="column of positives (definitions, answers, documents)")
    cols.add_argument("--negatives-column", help="column of given hard negatives (JSON list, or items separated by |)")
    mine = parser.add_argument_group("hard negatives")
    mine.add_argument("--hard-k", type=int, default=3, help="hard negatives per row, given ones included (default 3;"
                      " 0 = mine none)")
    mine.add_argument("--miner", choices=("bm25", "model"), default="bm25",
                      help="bm25 (lexical, default) or model (embedding similarity, needs --model-id)")
    mine.add_argument("--model-id", help="model folder or hub id for --miner model")
    mine.add_argument("--query-prompt", help="for --miner model: put this in front of each anchor, as training "
                                             "does (data.query_prompt; default: the model's own prompt)")
    mine.add_argument("--document-prompt", help="for --miner model: put this in front of each candidate "
                                                "(data.document_prompt; default: the model's own prompt)")
    mine.add_argument("--device", default="auto", help="device for --miner model: auto, cuda, mps or cpu")
    mine.add_argument("--batch-size", type=int, default=64, help="encoding batch size for --miner model")
    mine.add_argument("--tokens", choices=("auto", "bigram", "word"), default="auto",
                      help="BM25 tokens: auto (default: character bigrams for Korean/CJK, words otherwise), "
                      "bigram (character bigrams everywhere) or word")
    mine.add_argument("--near-duplicate", type=float, default=NEAR_DUPLICATE,
                      help=f"skip candidates whose character-bigram Jaccard with the positive is at least this "
                      f"(default {NEAR_DUPLICATE})")
    out = parser.add_argument_group("cleaning, split and report")
    out.add_argument("--keep-duplicates", action="store_true", help="keep pairs repeated after whitespace cleanup")
    out.add_argument("--eval-ratio", type=float, default=0.0, help="share of anchors held out for evaluation")
    out.add_argument("--eval-output", help="where held-out pairs go (default: <output>.eval.jsonl)")
    out.add_argument("--seed", type=int, default=42, help="seed of the train/eval split")
    out.add_argument("--tokenizer", help="tokenizer folder or id for exact token counts (default: estimate)")
    out.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH,
                     help=f"report the share of texts longer than this many tokens (default {DEFAULT_MAX_LENGTH})")
    out.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    """Compose the pairs file(s), print the report; 0 on success, 1 on a problem with the input or options."""
    options = ComposeOptions(
        encoding=args.encoding, delimiter=args.delimiter, header=args.header, anchor_column=args.anchor_column,
        positive_column=args.positive_column, negatives_column=args.negatives_column, hard_k=args.hard_k,
        miner=args.miner, tokens=args.tokens, model_id=args.model_id, device=args.device, batch_size=args.batch_size,
        query_prompt=args.query_prompt, document_prompt=args.document_prompt,
        near_duplicate=args.near_duplicate, dedupe=not args.keep_duplicates, eval_ratio=args.eval_ratio,
        eval_output=args.eval_output, seed=args.seed, tokenizer=args.tokenizer, max_length=args.max_length,
    )
    bars = _Bars(enabled=not args.quiet and sys.stderr.isatty())
    try:
        report = compose(args.input, args.output, options=options, on_progress=bars.update)
    except USER_ERRORS as e:
        bars.close()
        print(f"error: {e}", file=sys.stderr)
        return 1
    bars.close()
    print("\n".join(report.lines()))
    return 0


class _Bars:
    """One tqdm bar per stage, on stderr so the report on stdout stays clean."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.stage: str | None = None
        self.bar: Any = None

    def update(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if stage != self.stage:
            self.close()
            self.stage = stage
            self.bar = tqdm(total=total, desc=stage, unit="row", leave=False, file=sys.stderr)
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.stage = None
