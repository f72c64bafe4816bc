"""Whether embedgui runs as a shared, hosted service (stricter safety) rather than on the user's own machine."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_TRUTHY = {"1", "true", "yes", "on"}


def is_hosted() -> bool:
    """True when EMBEDGUI_HOSTED is 1/true/yes/on, or on a Hugging Face Space (SPACE_ID is set)."""
    if os.environ.get("EMBEDGUI_HOSTED", "").strip().lower() in _TRUTHY:
        return True
    return bool(os.environ.get("SPACE_ID", "").strip())


def protect_process() -> Path:
    """What a hosted app's process does once, after its workspace is resolved and before it serves anyone.

    - The server's Hugging Face token (HF_TOKEN, a stored login) is never sent implicitly: a visitor who names a
      private or gated repository, or pushes without typing a token, would otherwise act with the operator's rights.
    - The working directory becomes an empty private folder: every loader resolves a visitor's value inside the
      visitor's folders, and a library that still looks in the working directory (transformers opens a local
      folder named like a Hub id, `org/model`, before asking the Hub) finds nothing there, so no file of the
      server's can be opened, or its existence learned, through a relative name.
    Returns the new working directory.
    """
    os.environ["HF_HUB_DISABLE_IMPLICIT_TOKEN"] = "1"
    try:  # read once at import; the header builder asks the module attribute on every request
        import huggingface_hub.constants as hub_constants

        hub_constants.HF_HUB_DISABLE_IMPLICIT_TOKEN = True
    except ImportError:
        pass
    empty = Path(tempfile.mkdtemp(prefix="embedgui-cwd-"))
    os.chdir(empty)
    return empty
