"""bench --quality: how much better retrieval gets in the same wall-clock, embedgui's defaults against
sentence-transformers' (MultipleNegativesRankingLoss at its trainer's defaults).

Per data set: sentence-transformers trains one epoch at its defaults and its wall-clock (model loading to the end
of training) is T; then embedgui trains on the same pairs with only the model, the data and a budget of T
(`train.max_minutes`), i.e. its defaults. Both saved models and the base model are scored by one evaluator
(embedgui's, fp32) on the same held-out queries. Each run is a fresh process, as in the speed benchmark.

Data sets, all real and all from Debian packages fetched by the command (nothing installed system-wide):
- wordnet: WordNet 3.0 lemma -> gloss (wordnet-base), held out by term;
- tech-glossary: the Python 3.11 and git glossaries (python3.11-doc, git-doc), term -> definition, extracted by
  embedgui's own crawler extraction from the HTML pages;
- debian-ko: Korean package descriptions (Debian's Translation-ko): the one-line summary -> the long description.

Two more kinds, not in the default run, check that defaults chosen on the three above carry over to data they were
not chosen on (docs/recipes.md, "The data sets"):
- debian-en: the same descriptions in English (Translation-en): long English texts on which the base model starts
  high;
- manpages: Linux system calls and C library functions (manpages-dev): the names of a page -> its one-line
  summary ("malloc, free, calloc, realloc" -> "allocate and free dynamic memory"). Short technical texts.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .config import DEFAULT_MODEL_ID
from .data import Pair, read_pairs, split_pairs, write_pairs
from .text import fold

DATASETS = ("wordnet", "tech-glossary", "debian-ko")  # the default run: the defaults are chosen on these
CHECK_DATASETS = ("debian-en", "manpages")  # named too, for checking the defaults on data they were not chosen on
ST, EMBEDGUI = "sentence-transformers", "embedgui"


class QualityError(RuntimeError):
    """A data set that cannot be prepared; the message says what to fetch or pass instead."""


@dataclass
class QualitySettings:
    model_id: str = DEFAULT_MODEL_ID
    device: str = "cpu"
    datasets: tuple[str, ...] = DATASETS  # names above, or paths of pairs files (30% held out)
    train_pairs: int = 1024
    eval_queries: int = 1000  # capped at half the data set
    seed: int = 42
    # Repeat each comparison with seeds seed, seed+1, ...: each draws its own split of the data, its own order and
    # its own initial state for both tools. One run's ratio of gains moves by +-0.3 (docs/recipes.md); the mean of
    # several is what a default is chosen on.
    seeds: int = 1
    # Settings changed on top of embedgui's defaults ("optim.lr" -> 1e-4): what an ablation row turns on or off.
    overrides: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None  # where the Debian packages are unpacked (default: the checkout's .cache/testdata)


# -- the data sets ------------------------------------------------------------------------------------------------
def _testdata(settings: QualitySettings, package: str) -> Path:
    from .wordnet import default_dir, fetch_package

    root = Path(settings.data_dir) if settings.data_dir else default_dir().parent
    folder = root / package
    if not (folder / "usr").is_dir():
        fetch_package(folder, package)
    return folder


def _wordnet(settings: QualitySettings, seed: int) -> tuple[list[Pair], list[Pair]]:
    from .wordnet import find_wordnet, read_wordnet, split_by_term

    root = Path(settings.data_dir) / "wordnet-base" if settings.data_dir else None
    return split_by_term(read_wordnet(find_wordnet(root)), settings.eval_queries, seed=seed)


def _tech_glossary(settings: QualitySettings) -> list[Pair]:
    from .crawler import decode_html, extract_glossary

    pages = [(_testdata(settings, "python3.11-doc") / "usr/share/doc/python3.11/html/glossary.html",
              "https://docs.python.org/3.11/glossary.html"),
             (_testdata(settings, "git-doc") / "usr/share/doc/git-doc/gitglossary.html",
              "https://git-scm.com/docs/gitglossary")]
    pairs = []
    for path, url in pages:
        if not path.is_file():
            raise QualityError(f"{path} is missing; run bash scripts/fetch_testdata.sh.")
        pairs += [Pair(e.term, e.definition) for e in extract_glossary(decode_html(path.read_bytes())[0], url)]
    return pairs


_DEBIAN_LANGUAGES = {"debian-ko": ("ko", "Korean"), "debian-en": ("en", "English")}  # data set -> apt's language


def debian_descriptions(lists_dir: Path, language: str) -> list[Pair]:
    """Debian's package descriptions in a language (Translation-ko, Translation-en): summary line -> long
    description.

    Fetched into lists_dir with apt's own client and a private lists folder (the system's apt lists are untouched).
    """
    def main_index() -> Path | None:  # the release's own file, not the few packages of security or updates
        return max(lists_dir.glob(f"*_main_i18n_Translation-{language}*"), key=lambda f: f.stat().st_size,
                   default=None)

    index = main_index()
    if index is None:
        lists_dir.mkdir(parents=True, exist_ok=True)
        (lists_dir / "partial").mkdir(exist_ok=True)
        if shutil.which("apt-get"):
            subprocess.run(["apt-get", "update", "-qq", "-o", f"Acquire::Languages={language}", "-o",
                            f"Dir::State::Lists={lists_dir}", "-o",
                            "Acquire::IndexTargets::deb::Packages::DefaultEnabled=false"],
                           capture_output=True, timeout=600)
        index = main_index()
        if index is None:
            raise QualityError(f"Debian's package descriptions (Translation-{language}) could not be fetched with "
                               "apt-get; run this on a Debian machine with network access to its mirror, or pass "
                               "another data set.")
    helper = "/usr/lib/apt/apt-helper"
    raw = subprocess.run([helper, "cat-file", str(index)], capture_output=True, timeout=120).stdout \
        if Path(helper).exists() else index.read_bytes()
    field_name = re.escape(f"Description-{language}")
    pairs = []
    for block in raw.decode("utf-8", errors="replace").split("\n\n"):
        match = re.search(rf"^{field_name}: (.*)\n((?: .*\n?)*)", block, re.MULTILINE)
        if not match:
            continue
        summary = match.group(1).strip()
        body = " ".join(line.strip() for line in match.group(2).splitlines() if line.strip() not in ("", "."))
        if summary and len(body) > 20:
            pairs.append(Pair(summary, body))
    return pairs


_ROFF_FONT = re.compile(r"\\f(?:[BIRP]|\(\w\w|\[\w*\])")  # \fB, \fR, \f(CW, \f[B]: font changes
_ROFF_ESCAPE = re.compile(r"\\(?:\(\w\w|\[[^]]*\]|.)")  # any other escape: \-, \(em, \[dq], \&


def man_page_summaries(man_dir: Path) -> list[Pair]:
    """(names, summary) of every man page under man_dir (man2/open.2.gz ...) from its NAME section,
    ".SH NAME\\nopen, openat, creat \\- open and possibly create a file": "open, openat, creat" -> "open and
    possibly create a file". Pages that only point to another (".so man2/open.2") are left out."""
    pairs = []
    for path in sorted(man_dir.glob("man*/*.gz")):
        text = gzip.decompress(path.read_bytes()).decode("utf-8", errors="replace")
        if text.startswith(".so "):
            continue
        match = re.search(r"^\.SH\s+\"?NAME\"?\s*\n(.*?)(?=^\.SH)", text, re.MULTILINE | re.DOTALL)
        if not match:
            continue
        lines = [ln for ln in match.group(1).splitlines() if ln.strip() and not ln.startswith((".\\\"", "'\\\""))]
        line = " ".join(re.sub(r"^\.[A-Za-z]+\s*", "", ln) for ln in lines)
        line = _ROFF_FONT.sub("", line).replace("\\-", "\x00")
        line = " ".join(_ROFF_ESCAPE.sub("", line).split())
        names, sep, summary = line.partition("\x00")
        names, summary = names.strip(" ,"), summary.strip()
        if sep and names and len(summary) > 5:
            pairs.append(Pair(names, summary))
    return pairs


def prepare(name: str, settings: QualitySettings, work: Path, seed: int | None = None) -> dict[str, Any]:
    """Write NAME-SEED-train.jsonl (train_pairs rows) and NAME-SEED-eval.jsonl (held-out queries), split with the
    seed (settings.seed by default); a description of both."""
    seed = settings.seed if seed is None else seed
    rng = random.Random(seed)
    if name == "wordnet":
        train, held_out = _wordnet(settings, seed)
        kind = "WordNet 3.0 lemma -> gloss, held out by term"
    else:
        if name == "tech-glossary":
            pairs, kind = _tech_glossary(settings), "Python 3.11 + git glossaries, term -> definition"
        elif name in _DEBIAN_LANGUAGES:
            language, language_name = _DEBIAN_LANGUAGES[name]
            pairs = debian_descriptions(work.parent / f"{name}-lists", language)
            kind = f"Debian {language_name} package descriptions, summary -> long description"
        elif name == "manpages":
            man_dir = _testdata(settings, "manpages-dev") / "usr/share/man"
            pairs, kind = man_page_summaries(man_dir), "Linux man pages (manpages-dev), names -> NAME summary"
        elif Path(name).is_file():
            pairs, kind = read_pairs(name)[0], f"{name}"
        else:
            raise QualityError(f"--data: {name} is neither one of {', '.join(DATASETS + CHECK_DATASETS)} nor a "
                               "pairs file.")
        # One pair per distinct query and per distinct answer: a duplicated text would have two right answers.
        seen: set[str] = set()
        unique = []
        for p in pairs:
            keys = {fold(p.anchor), fold(p.positive)}
            if not keys & seen:
                seen |= keys
                unique.append(p)
        ratio = min(0.5, settings.eval_queries / max(len(unique), 1))
        train, held_out = split_pairs(unique, ratio, seed)
    rng.shuffle(train)
    train = train[: settings.train_pairs]
    if len(train) < 16 or len(held_out) < 10:
        raise QualityError(f"{name}: only {len(train)} training and {len(held_out)} held-out pairs; too few to "
                           "compare.")
    stem = f"{_slug(name)}-{seed}"
    paths = {"train": work / f"{stem}-train.jsonl", "eval": work / f"{stem}-eval.jsonl"}
    write_pairs(paths["train"], train)
    write_pairs(paths["eval"], held_out)
    return {"name": name, "kind": kind, "train_pairs": len(train), "eval_queries": len(held_out),
            "train_path": str(paths["train"]), "eval_path": str(paths["eval"])}


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", Path(name).stem if "/" in name else name).strip("-")


# -- one run, in its own process ----------------------------------------------------------------------------------
def run_quality_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Train as spec says (sentence-transformers at its defaults for one epoch, or embedgui on a budget)."""
    out = Path(spec["out_dir"])
    start = time.perf_counter()
    if spec["tool"] == ST:
        steps, model_dir = _st_defaults(spec, out)
    else:
        steps, model_dir = _embedgui_defaults(spec, out)
    wall = time.perf_counter() - start
    from .benchmark import evaluate_saved

    metrics = evaluate_saved(model_dir, spec["eval_path"], spec["device"], spec["max_length"], 64)
    return {"wall_s": wall, "steps": steps, "metrics": metrics}


def _st_defaults(spec: dict[str, Any], out: Path) -> tuple[int, Path]:
    import transformers
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    try:  # sentence-transformers 6 moved the losses; 5 has them only here
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:
        from sentence_transformers.losses import MultipleNegativesRankingLoss

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    model = SentenceTransformer(spec["model_path"], device=spec["device"])
    pairs, _ = read_pairs(spec["train_path"])
    dataset = Dataset.from_dict({"anchor": [p.anchor for p in pairs], "positive": [p.positive for p in pairs]})
    # Its defaults: batch 8, lr 5e-5, no warmup, linear decay, fp32, scale 20; one epoch, no saving on the way.
    args = SentenceTransformerTrainingArguments(output_dir=str(out / "st-trainer"), num_train_epochs=1,
                                                save_strategy="no", report_to="none", disable_tqdm=True,
                                                use_cpu=spec["device"] == "cpu", seed=spec["seed"])
    trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset,
                                         loss=MultipleNegativesRankingLoss(model))
    output = trainer.train()
    model_dir = out / "st-model"
    model.save(str(model_dir))
    return int(output.global_step), model_dir


def _embedgui_defaults(spec: dict[str, Any], out: Path) -> tuple[int, Path]:
    from .config import config_from_dict
    from .trainer import Trainer

    raw: dict[str, Any] = {"model_id": spec["model_path"], "device": spec["device"], "seed": spec["seed"],
                           "data": {"pairs_path": spec["train_path"]},
                           "output": {"save_dir": str(out), "save_name": "embedgui"}}
    if spec.get("minutes"):
        raw.setdefault("train", {})["max_minutes"] = spec["minutes"]
    for key, value in spec.get("overrides", {}).items():  # "train.lr" -> raw["train"]["lr"]
        *sections, leaf = key.split(".")
        node = raw
        for s in sections:
            node = node.setdefault(s, {})
        node[leaf] = value
    trainer = Trainer(config_from_dict(raw))
    result = trainer.fit()
    return result.step, Path(trainer.run_dir)


# -- the comparison -----------------------------------------------------------------------------------------------
def _gain_ratio(ours: float, theirs: float) -> float:
    """embedgui's recall@1 gain over sentence-transformers' (inf when theirs is 0 and ours is not)."""
    if theirs == 0:
        return float("inf") if ours > 0 else (0.0 if ours == 0 else float("-inf"))
    return ours / theirs


@dataclass
class QualityResult:
    dataset: dict[str, Any]
    seconds: float  # T: sentence-transformers' wall-clock, embedgui's budget
    before: dict[str, float]
    st: dict[str, Any]
    embedgui: dict[str, Any]
    seed: int = 42

    @property
    def gain_ratio(self) -> float:
        """embedgui's recall@1 gain over sentence-transformers' (inf when theirs is 0 and ours is not)."""
        return _gain_ratio(self.embedgui["metrics"]["recall@1"] - self.before["recall@1"],
                           self.st["metrics"]["recall@1"] - self.before["recall@1"])


def summarize(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per data set, over its seeds: the mean of every metric and step count, and the ratio of the mean recall@1
    gains (a ratio of means: one seed whose sentence-transformers gain is near 0 cannot blow it up)."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_name.setdefault(r["dataset"]["name"], []).append(r)
    rows = []
    for name, runs in by_name.items():
        def mean(get: Callable[[dict[str, Any]], float], runs: list[dict[str, Any]] = runs) -> float:
            return sum(get(r) for r in runs) / len(runs)

        before = {m: mean(lambda r, m=m: r["before"][m]) for m in QUALITY_METRICS}
        st = {m: mean(lambda r, m=m: r["st"]["metrics"][m]) for m in QUALITY_METRICS}
        ours = {m: mean(lambda r, m=m: r["embedgui"]["metrics"][m]) for m in QUALITY_METRICS}
        rows.append({
            "name": name, "seeds": [r.get("seed") for r in runs], "train_pairs": runs[0]["dataset"]["train_pairs"],
            "eval_queries": runs[0]["dataset"]["eval_queries"], "seconds": mean(lambda r: r["seconds"]),
            "st_steps": mean(lambda r: r["st"]["steps"]), "embedgui_steps": mean(lambda r: r["embedgui"]["steps"]),
            "before": before, "st": st, "embedgui": ours,
            "gain_ratio": _gain_ratio(ours["recall@1"] - before["recall@1"], st["recall@1"] - before["recall@1"]),
            "seed_ratios": [r["gain_ratio"] for r in runs],
        })
    return rows


def run_quality(settings: QualitySettings, log: Callable[[str], None] = print,
                work_dir: str | Path | None = None) -> dict[str, Any]:
    """Every data set and seed: the base model, sentence-transformers' run (T), embedgui's run on a budget of T."""
    from .benchmark import _spawn, evaluate_saved
    from .modeling import resolve_model_path

    model_path = resolve_model_path(settings.model_id)
    tmp = None if work_dir else tempfile.TemporaryDirectory(prefix="embedgui-quality-")
    work = Path(work_dir or tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = []

    def say(text: str) -> None:
        log(f"[{time.perf_counter() - started:5.0f} s] {text}")

    try:
        for name in settings.datasets:
            for seed in range(settings.seed, settings.seed + settings.seeds):
                who = f"{name} (seed {seed})" if settings.seeds > 1 else name
                say(f"{who}: preparing the data")
                data = prepare(name, settings, work, seed)
                before = evaluate_saved(model_path, data["eval_path"], settings.device, 128, 64)
                base = {"model_path": model_path, "device": settings.device, "seed": seed,
                        "train_path": data["train_path"], "eval_path": data["eval_path"], "max_length": 128}
                tag = f"{_slug(name)}-{settings.train_pairs}-{settings.eval_queries}-{seed}"
                kept = work / f"{tag}-st.result.json"
                if work_dir and kept.exists():  # an ablation in the same work folder: the same baseline, not re-run
                    say(f"{who}: sentence-transformers' run from {kept}")
                    st = json.loads(kept.read_text(encoding="utf-8"))
                else:
                    say(f"{who}: sentence-transformers, one epoch at its defaults")
                    st = _spawn({**base, "tool": ST, "out_dir": str(work / f"{tag}-st")}, work, f"{tag}-st",
                                module="embedgui.engine.quality")
                say(f"{who}: embedgui with a budget of {st['wall_s']:.0f} s")
                # Mined negatives cached by an earlier row of this work folder would make mining free: each run pays.
                train_path = Path(data["train_path"])
                for cached in train_path.parent.glob(f"{train_path.stem}.mined-*.jsonl"):
                    cached.unlink()
                ours = _spawn({**base, "tool": EMBEDGUI, "minutes": st["wall_s"] / 60, "overrides": settings.overrides,
                               "out_dir": str(work / f"{tag}-embedgui")}, work, f"{tag}-embedgui",
                              module="embedgui.engine.quality")
                results.append(QualityResult(data, st["wall_s"], before, st, ours, seed))
    finally:
        if tmp is not None:
            tmp.cleanup()
    runs = [{**asdict(r), "gain_ratio": r.gain_ratio} for r in results]
    return {"settings": asdict(settings), "results": runs, "summary": summarize(runs)}


QUALITY_METRICS = ("recall@1", "recall@5", "mrr@10")


def quality_table(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: per data set (the mean over its seeds), before / sentence-transformers / embedgui and the
    ratio of recall@1 gains, with each seed's own ratio when there are several."""
    header = ["data", "pairs (train / held-out)", "seeds", "T s", "ST steps", "embedgui steps"]
    header += [f"{m} {who}" for m in QUALITY_METRICS for who in ("before", "ST", "embedgui")]
    header.append("recall@1 gain: embedgui / ST")
    rows = []
    for s in report["summary"]:
        row = [s["name"], f"{s['train_pairs']} / {s['eval_queries']}", str(len(s["seeds"])), f"{s['seconds']:.0f}",
               f"{s['st_steps']:.0f}", f"{s['embedgui_steps']:.0f}"]
        for m in QUALITY_METRICS:
            row += [f"{s['before'][m]:.3f}", f"{s['st'][m]:.3f}", f"{s['embedgui'][m]:.3f}"]
        each = f" (seeds: {', '.join(f'{x:.2f}' for x in s['seed_ratios'])})" if len(s["seeds"]) > 1 else ""
        row.append(f"{s['gain_ratio']:.2f}x{each}")
        rows.append(row)
    return header, rows


def _main(argv: Sequence[str]) -> int:
    from .files import atomic_write_text

    spec_path, out_path = argv
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    atomic_write_text(out_path, json.dumps(run_quality_worker(spec)))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main(sys.argv[1:]))
