"""python -m embedgui search --model-dir DIR --corpus FILE --query TEXT [--query TEXT ...] [--k 5]"""

from __future__ import annotations

import argparse
import logging
import sys

from ..engine.errors import USER_ERRORS
from ..engine.modeling import load_embedder
from ..engine.search import SearchIndex, load_corpus
from . import positive_int
from .eval import in_flags as _in_flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model-dir", metavar="DIR",
                        help="model folder written by train, or any model id/folder (default with --index: the "
                             "model the index was built with)")
    parser.add_argument("--corpus", metavar="FILE",
                        help="texts to search: a .txt (one a line), a pairs .jsonl (its positives) or a .csv/.tsv")
    parser.add_argument("--column", metavar="NAME", help="the CSV/TSV column (or JSONL field) holding the texts")
    parser.add_argument("--query", action="append", required=True, metavar="TEXT", help="a query; repeat for more")
    parser.add_argument("--k", type=positive_int, default=5, help="hits per query (default 5)")
    parser.add_argument("--index", metavar="DIR",
                        help="with --corpus: save the built index here; without: load the index saved here")
    parser.add_argument("--device", default="auto", help="auto, cuda, mps or cpu (default: auto)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="texts per encoding batch (default 64)")
    parser.add_argument("--dim", type=positive_int, metavar="N",
                        help="with --corpus: index only the first N dimensions (a Matryoshka size the model was "
                             "trained for: smaller and faster)")
    parser.add_argument("--trust-remote-code", action="store_true", default=None,
                        help="let models that ship their own code run it on this machine (only for models you "
                             "trust; default: a run folder's hf.trust_remote_code, else no)")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    if not args.corpus and not args.index:
        print("error: give --corpus FILE to search (or --index DIR to load a saved index).", file=sys.stderr)
        return 2
    if any(not q.strip() for q in args.query):
        print("error: --query is empty; give the text to search for.", file=sys.stderr)
        return 2
    if args.corpus and not args.model_dir:
        print("error: --model-dir is needed to embed the --corpus; give a model folder or id.", file=sys.stderr)
        return 2
    try:
        trust = {} if args.trust_remote_code is None else {"trust_remote_code": True}
        embedder = load_embedder(args.model_dir, device=args.device, **trust) if args.model_dir else None
        if args.corpus:
            index = SearchIndex.build(load_corpus(args.corpus, args.column), embedder, batch_size=args.batch_size,
                                      dim=args.dim)
            if args.index:
                index.save(args.index)
        else:
            index = SearchIndex.load(args.index, embedder, device=args.device,
                                     trust_remote_code=args.trust_remote_code)
        results = index.query(args.query, k=args.k)
    except USER_ERRORS as e:
        print(f"error: {_in_flags(str(e), models='--model-dir')}", file=sys.stderr)
        return 2
    for n, (query, hits) in enumerate(zip(args.query, results)):
        if len(args.query) > 1:
            print(("\n" if n else "") + f"query: {query}")
        for hit in hits:
            print(f"{hit.score:.4f}  {' '.join(hit.text.split())}")
    return 0
