"""One way to turn a user-given path into the file a loader opens, and to confine it on a hosted app.

Every loader (pairs, eval file, corpus, model folder) and the hosted-mode check call resolve_user_path, so the
check always sees the file the loader will open: the same base folder, the same `~` expansion, after `..` and
symbolic links.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

# owner/name on the Hugging Face Hub: no "..", no leading dot or slash, at most one slash.
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


class PathRefused(ValueError):
    """A hosted app was given a path outside its folders; the message never says whether the path exists."""


def inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Whether path (after resolving links and ..) lies under root."""
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except (ValueError, OSError):
        return False


def looks_like_hub_id(text: str) -> bool:
    return bool(_HUB_ID.match(text)) and ".." not in text


def candidates(value: str, base_dir: str | os.PathLike | None, confined: bool = False) -> list[Path]:
    """Where a loader looks for value: as given if absolute, else beside the config, then (unconfined) in the cwd."""
    path = Path(value.strip()).expanduser()
    if path.is_absolute():
        return [path]
    bases = [Path(base_dir)] if base_dir else []
    if not confined or not bases:  # a hosted app never falls back to the server's working directory
        bases.append(Path.cwd())
    return [b / path for b in dict.fromkeys(bases)]


def resolve_user_path(value: str, base_dir: str | os.PathLike | None = None, *,
                      roots: Sequence[str | os.PathLike] | None = None, field: str = "path",
                      hub_ok: bool = False) -> Path | None:
    """The local path a loader opens for value (the first candidate that exists, else the first candidate),
    or None when value names a Hub repository (only with hub_ok, and only when no local candidate exists).

    With roots (a hosted app), every candidate must lie inside one of them, judged on the text and on links
    inside the roots only, whether or not it exists: a refusal reveals nothing about files outside.
    """
    text = (value or "").strip()
    found = candidates(text, base_dir, confined=roots is not None)
    if roots is not None:
        for c in found:
            if not any(inside(c, r) for r in roots):
                raise PathRefused(f"{field}: {text} is outside the app's folders; upload the file or pick one "
                                  "from the lists.")
    for c in found:
        if c.exists():
            return c
    if hub_ok and looks_like_hub_id(text):
        return None
    return found[0]
