"""Whether embedgui runs as a shared, hosted service (stricter safety) rather than on the user's own machine."""

from __future__ import annotations

import os

_TRUTHY = {"1", "true", "yes", "on"}


def is_hosted() -> bool:
    """True when EMBEDGUI_HOSTED is 1/true/yes/on, or on a Hugging Face Space (SPACE_ID is set)."""
    if os.environ.get("EMBEDGUI_HOSTED", "").strip().lower() in _TRUTHY:
        return True
    return bool(os.environ.get("SPACE_ID", "").strip())
