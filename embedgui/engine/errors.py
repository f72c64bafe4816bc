"""USER_ERRORS: the one tuple of errors a user can cause and fix (a path, a file, an option, the disk).

Front ends (CLI commands, the app's tabs, the runner) show these as one sentence; anything else is a bug and
keeps its traceback. This module only gathers the classes, so every front end can import it without cycles;
engine modules define their errors next to the code that raises them and never import this module.
"""

from __future__ import annotations

from .compose import ComposeError
from .config import ConfigError
from .data import PairsError
from .device import DeviceError
from .modeling import ModelLoadError
from .paths import PathRefused
from .runs import RunsError
from .search import CorpusError, SearchIndexError
from .tables import TableError
from .trainer import TrainingError

# OSError covers files.SaveError (disk full, read-only folder) and a missing or unreadable file.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError, PairsError, ModelLoadError, DeviceError, TrainingError, TableError, ComposeError, CorpusError,
    SearchIndexError, PathRefused, RunsError, OSError,
)
