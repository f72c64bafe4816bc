"""Where a crawl starts: the built-in page lists, URL files and the offline sample pages."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parents[3] / "assets" / "crawler_samples"

# English Wikipedia glossaries on computing, mathematics and science. Korean equivalents are not guessed: the
# crawler follows each page's own interlanguage link to ko.wikipedia (see `follow_languages`), so only Korean
# pages that really exist are fetched.
WIKIPEDIA_GLOSSARY_TITLES = (
    "Glossary_of_artificial_intelligence",
    "Glossary_of_computer_science",
    "Glossary_of_computer_hardware_terms",
    "Glossary_of_computer_graphics",
    "Glossary_of_machine_vision",
    "Glossary_of_Unified_Modeling_Language_terms",
    "Glossary_of_quantum_computing",
    "Glossary_of_robotics",
    "Glossary_of_electrical_and_electronics_engineering",
    "Glossary_of_probability_and_statistics",
    "Glossary_of_linear_algebra",
    "Glossary_of_calculus",
    "Glossary_of_graph_theory",
    "Glossary_of_game_theory",
    "Glossary_of_areas_of_mathematics",
    "Glossary_of_physics",
    "Glossary_of_chemistry_terms",
    "Glossary_of_biology",
)
WIKIPEDIA_GLOSSARY_URLS = tuple(f"https://en.wikipedia.org/wiki/{title}" for title in WIKIPEDIA_GLOSSARY_TITLES)


@dataclass(frozen=True)
class Source:
    """A named, built-in set of start pages, plus the languages whose equivalents are followed from them."""

    urls: tuple[str, ...]
    follow_languages: tuple[str, ...] = ()
    description: str = ""


SOURCES: dict[str, Source] = {
    "wikipedia_glossary": Source(
        WIKIPEDIA_GLOSSARY_URLS, ("ko",),
        "English Wikipedia 'Glossary of ...' pages, plus their Korean versions where Wikipedia links one"),
    "wikipedia_glossary_en": Source(WIKIPEDIA_GLOSSARY_URLS, (), "the same English pages, without Korean"),
}


def resolve_sources(names: Iterable[str]) -> list[str]:
    """Start URLs of the named built-in sources, in order, without duplicates."""
    urls: list[str] = []
    for name in names:
        if name not in SOURCES:
            known = ", ".join(sorted(SOURCES))
            raise ValueError(f"Unknown source {name!r}: choose one of {known}.")
        urls.extend(SOURCES[name].urls)
    return list(dict.fromkeys(urls))


def source_languages(names: Iterable[str]) -> tuple[str, ...]:
    """Languages the named sources follow interlanguage links to (e.g. ('ko',) for wikipedia_glossary)."""
    langs: list[str] = []
    for name in names:
        if name in SOURCES:
            langs.extend(SOURCES[name].follow_languages)
    return tuple(dict.fromkeys(langs))


def read_url_file(path: str | Path) -> list[str]:
    """URLs from a text file: one a line; blank lines and lines starting with # are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"Cannot read the URL file {path}: {exc.strerror or exc}; check the path.") from exc
    except UnicodeDecodeError as exc:
        raise ValueError(f"The URL file {path} is not UTF-8 text; save it as UTF-8.") from exc
    urls = []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()  # allow a trailing " # comment" too
        if line and not line.startswith("#"):
            urls.append(line)
    return urls


def sample_pages() -> list[Path]:
    """The offline sample glossary pages used by --dry-run."""
    return sorted(SAMPLES_DIR.glob("*.html"))
