"""What every tab shares: the workspace folders, hosted mode, and the process's one training Run."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.runner import Run

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"
SAMPLE_PAIRS = ASSETS / "sample_pairs.jsonl"
SAMPLE_GLOSSARY = ASSETS / "sample_glossary.csv"


@dataclass
class AppContext:
    workspace: Path
    hosted: bool
    run: Run = field(default_factory=Run)
    max_upload_mb: int = 20

    @classmethod
    def create(cls, workspace: str | os.PathLike | None = None, hosted: bool | None = None) -> AppContext:
        from ..engine.hosted import is_hosted

        root = Path(workspace or os.environ.get("EMBEDGUI_WORKSPACE", "workspace")).resolve()
        for sub in ("data", "runs"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        hosted = is_hosted() if hosted is None else hosted
        # a hosted app serves many visitors: only the visitor who started a run may stop or resume it
        return cls(workspace=root, hosted=hosted, run=Run(single_user=not hosted))

    @property
    def data_dir(self) -> Path:
        return self.workspace / "data"

    @property
    def runs_dir(self) -> Path:
        return self.workspace / "runs"

    @property
    def config_path(self) -> Path:
        return self.workspace / "config.json"

    @property
    def allowed_roots(self) -> list[Path]:
        """Folders a hosted app may read from: its workspace first, then the bundled assets."""
        return [self.workspace, ASSETS]

    def refuse_path(self, value: str | None, name: str) -> str | None:
        """Hosted mode: a local file or folder outside the app's folders is refused (hub ids pass)."""
        text = (value or "").strip()
        if not self.hosted or not text:
            return None
        path = Path(text).expanduser()  # the loaders expand ~ too
        local = path.is_absolute() or path.exists() or text.startswith((".", "~"))
        if not local:
            return None  # a hub id such as sentence-transformers/all-MiniLM-L6-v2
        if any(inside(path, root) for root in self.allowed_roots):
            return None
        return f"{name}: {value} is outside the app's folders; upload the file or pick a run from the list."

    def trained_models(self) -> list[str]:
        """Run folders that hold a saved model (newest first, as the run list)."""
        from ..engine.runs import list_runs

        return [r.path for r in list_runs(self.runs_dir) if r.has_model]


def inside(path: Path, root: Path) -> bool:
    """Whether path (after resolving links and ..) lies under root."""
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False
