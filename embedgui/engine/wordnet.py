"""WordNet lemma -> gloss pairs from Debian's wordnet-base data files, and a held-out split by term.

Each synset line of data.noun/verb/adj/adv gives one pair per lemma: anchor = the lemma with underscores as
spaces, positive = the gloss without its quoted example sentences. Used by `python -m embedgui bench` as real,
freely licensed training and evaluation data that is the same on every machine.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .data import Pair
from .text import fold

PACKAGE = "wordnet-base"
PARTS = ("noun", "verb", "adj", "adv")
DATA_SUBDIR = Path("usr/share/wordnet")  # where the .deb puts data.noun etc.

_MARKER = re.compile(r"\((?:a|p|ip)\)$")  # adjective position markers: outback(a), out_of_reach(p)
_QUOTED = re.compile(r'"[^"]*"')


class WordNetError(RuntimeError):
    """The WordNet files are missing and could not be fetched, or are not WordNet data files."""


def clean_gloss(gloss: str) -> str:
    """The definition part of a gloss: quoted example sentences and the separators they leave are removed."""
    text = _QUOTED.sub("", gloss)
    parts = [p.strip() for p in text.split(";")]
    # A stray quote is what is left of an example with a missing quote mark (40 glosses in WordNet 3.0).
    return "; ".join(p for p in parts if p and '"' not in p)


def parse_data_line(line: str) -> tuple[list[str], str] | None:
    """(lemmas, gloss) of one data.* line; None for the licence header and lines without a gloss."""
    if not line or line.startswith(" ") or "|" not in line:
        return None
    head, gloss = line.split("|", 1)
    fields = head.split()
    # offset lex_filenum ss_type w_cnt(hex) [word lex_id]*w_cnt ...
    count = int(fields[3], 16)
    lemmas = []
    for i in range(count):
        word = _MARKER.sub("", fields[4 + 2 * i])
        lemmas.append(word.replace("_", " "))
    return lemmas, clean_gloss(gloss)


def read_wordnet(directory: str | Path, parts: Sequence[str] = PARTS) -> list[Pair]:
    """Every (lemma, gloss) pair of the data files in directory, in file order, without duplicate pairs."""
    directory = Path(directory)
    pairs: list[Pair] = []
    seen: set[tuple[str, str]] = set()
    for part in parts:
        path = directory / f"data.{part}"
        if not path.is_file():
            raise WordNetError(f"{path} does not exist; pass a folder that holds WordNet's data.noun, data.verb, "
                               "data.adj and data.adv.")
        with path.open(encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                try:
                    parsed = parse_data_line(line)
                except (ValueError, IndexError):
                    raise WordNetError(f"{path}:{number} is not a WordNet data line; is this a WordNet data "
                                       "file?") from None
                if parsed is None:
                    continue
                lemmas, gloss = parsed
                if not gloss:
                    continue
                for lemma in lemmas:
                    if (lemma, gloss) not in seen:
                        seen.add((lemma, gloss))
                        pairs.append(Pair(lemma, gloss, line=number))
    if not pairs:
        raise WordNetError(f"No pairs in the WordNet files in {directory}; are they empty?")
    return pairs


def term(text: str) -> str:
    """The identity of a term for the split: case and spacing do not make a new term (the one same-text key)."""
    return fold(text)


def split_by_term(pairs: Sequence[Pair], eval_terms: int, seed: int = 0) -> tuple[list[Pair], list[Pair]]:
    """(train, held_out): held_out has one pair for each of eval_terms single-sense terms, chosen at random.

    No term is on both sides, and no training pair has a held-out gloss as its positive (a synonym of a
    held-out term would otherwise teach its exact answer). Single-sense terms make recall@1 reachable (a term
    with five senses would have five right answers).
    """
    by_term: dict[str, list[Pair]] = {}
    for pair in pairs:
        by_term.setdefault(term(pair.anchor), []).append(pair)
    single = sorted(t for t, rows in by_term.items() if len(rows) == 1)
    if eval_terms > len(single) // 2:
        raise ValueError(f"eval_terms: {eval_terms} is more than half of the {len(single)} single-sense terms; "
                         "ask for fewer.")
    rng = random.Random(seed)
    held = set(rng.sample(single, eval_terms))
    held_out = [by_term[t][0] for t in sorted(held)]
    rng.shuffle(held_out)
    held_glosses = {term(p.positive) for p in held_out}
    train = [p for p in pairs if term(p.anchor) not in held and term(p.positive) not in held_glosses]
    return train, held_out


def default_dir() -> Path:
    """Where the unpacked package lives: the checkout's .cache/testdata (as scripts/fetch_testdata.sh puts it)."""
    root = Path(__file__).resolve().parents[2]
    if (root / "scripts" / "fetch_testdata.sh").exists():
        return root / ".cache" / "testdata" / PACKAGE
    from .device import cache_dir

    return cache_dir() / "testdata" / PACKAGE


def find_wordnet(package_dir: str | Path | None = None, fetch: bool = True) -> Path:
    """The folder holding data.noun etc.: under package_dir (default default_dir()), fetched when missing."""
    package_dir = Path(package_dir) if package_dir else default_dir()
    for candidate in (package_dir, package_dir / DATA_SUBDIR):
        if (candidate / "data.noun").is_file():
            return candidate
    if not fetch:
        raise WordNetError(f"WordNet data not found in {package_dir}; run bash scripts/fetch_testdata.sh.")
    fetch_package(package_dir)
    return package_dir / DATA_SUBDIR


def fetch_package(dest: Path, package: str = PACKAGE) -> None:
    """apt-get download a Debian package (wordnet-base by default) and unpack it with dpkg-deb -x into dest (no
    system-wide install)."""
    how = (f"download Debian's {package} .deb yourself and unpack it with `dpkg-deb -x FILE.deb {dest}`"
           + (", or pass --wordnet-dir with a folder that holds data.noun" if package == PACKAGE else ""))
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise WordNetError(f"{package} is not in {dest} and apt-get/dpkg-deb are not available to fetch it; {how}.")
    with tempfile.TemporaryDirectory() as tmp:
        if not _download(tmp, package):
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)  # stale package lists
            if not _download(tmp, package):
                raise WordNetError(f"apt-get download {package} failed (offline, or no package lists); {how}.")
        deb = next(Path(tmp).glob(f"{package}_*.deb"))
        partial = dest.with_name(dest.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        partial.parent.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], capture_output=True, text=True)
        if done.returncode:
            raise WordNetError(f"dpkg-deb -x {deb.name} failed: {done.stderr.strip()}; {how}.")
        shutil.rmtree(dest, ignore_errors=True)
        partial.rename(dest)  # only a complete unpack gets the final name


def _download(folder: str, package: str = PACKAGE) -> bool:
    try:
        done = subprocess.run(["apt-get", "download", "-qq", package], cwd=folder, capture_output=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0 and any(Path(folder).glob(f"{package}_*.deb"))
