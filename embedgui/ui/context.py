"""What every tab shares: the workspace folders, hosted mode, and the process's one training Run."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..engine.paths import PathRefused, resolve_user_path
from ..engine.runner import Run

ASSETS = Path(__file__).resolve().parent.parent.parent / "assets"
SAMPLE_PAIRS = ASSETS / "sample_pairs.jsonl"
SAMPLE_GLOSSARY = ASSETS / "sample_glossary.csv"
# What one visitor may ask of a shared (hosted) app; a larger job belongs on the visitor's own machine.
HOSTED_CAPS = {"train.batch_size": 128, "train.max_length": 512, "train.epochs": 20, "train.steps_per_epoch": 5000,
               "train.grad_accum_steps": 16, "train.num_workers": 2}  # workers: processes a visitor may start
HOSTED_MAX_MINUTES = 60.0  # one run's training time; EMBEDGUI_HOSTED_MAX_MINUTES changes it
# One visitor's folder (uploads, crawls, composed data, runs) on a shared disk; EMBEDGUI_HOSTED_QUOTA_MB changes it.
# A MiniLM run keeps ~90 MB of model and ~270 MB of snapshot (weights and optimizer state): about five runs.
HOSTED_QUOTA_MB = 2000.0
# fields that may name a Hub repository instead of a local folder
MODEL_FIELDS = {"model_id", "tokenizer_id", "model", "base"}
VISITORS = "visitors"  # a hosted app's workspace holds one folder per visitor (browser) under this one
# A hosted app's disk must not fill with the folders of visitors who never come back: a visitor's folder goes after
# this many days without a visit (EMBEDGUI_HOSTED_KEEP_DAYS; 0 keeps every folder), download and export copies
# after a day. The sweep runs when the app starts and then at most once an hour, on a visit.
HOSTED_KEEP_DAYS = 7.0
SWEEP_EVERY_S = 3600.0
COPY_KEEP_S = 86400.0
SEEN_NAME = ".last_seen"  # touched on a visit (at most once a minute): the visitor's last visit
COPY_PREFIXES = ("embedgui-dl-", "embedgui-export-")


@dataclass
class AppContext:
    workspace: Path
    hosted: bool
    run: Run = field(default_factory=Run)
    max_upload_mb: int = 20
    keep_days: float = HOSTED_KEEP_DAYS
    quota_mb: float | None = None  # a hosted visitor's folder; None = no quota (a local app)
    # a hosted app's visitors' contexts by folder name (shared by every context of the app)
    _visitors: dict[str, AppContext] = field(default_factory=dict, repr=False)
    _visitors_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # when each visitor's visit was last recorded, and "sweep": when the app last swept (shared likewise)
    _seen: dict[str, float] = field(default_factory=dict, repr=False)

    @classmethod
    def create(cls, workspace: str | os.PathLike | None = None, hosted: bool | None = None) -> AppContext:
        from ..engine.hosted import is_hosted

        root = Path(workspace or os.environ.get("EMBEDGUI_WORKSPACE", "workspace")).resolve()
        for sub in ("data", "runs"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        hosted = is_hosted() if hosted is None else hosted
        # a hosted app serves many visitors: only the visitor who started a run may stop or resume it
        minutes = float(os.environ.get("EMBEDGUI_HOSTED_MAX_MINUTES", HOSTED_MAX_MINUTES)) if hosted else None
        keep = float(os.environ.get("EMBEDGUI_HOSTED_KEEP_DAYS", HOSTED_KEEP_DAYS))
        quota = float(os.environ.get("EMBEDGUI_HOSTED_QUOTA_MB", HOSTED_QUOTA_MB)) if hosted else None
        ctx = cls(workspace=root, hosted=hosted, run=Run(single_user=not hosted, max_minutes=minutes), keep_days=keep,
                  quota_mb=quota or None)
        if hosted:
            ctx.sweep()
        return ctx

    def browser_secret(self) -> str:
        """The key the browser's stored id is encrypted with, kept in the workspace so it outlives a restart."""
        path = self.workspace / ".browser_secret"
        try:
            return path.read_text(encoding="utf-8").strip() or self._new_secret(path)
        except OSError:
            return self._new_secret(path)

    @staticmethod
    def _new_secret(path: Path) -> str:
        secret = secrets.token_urlsafe(24)
        with contextlib.suppress(OSError):  # an unwritable workspace: ids then last until the app restarts
            path.write_text(secret, encoding="utf-8")
            path.chmod(0o600)
        return secret

    def visitor(self, owner: str | None) -> AppContext:
        """The context one browser's handlers use. A hosted app gives each visitor (the owner id its browser keeps)
        a workspace of its own under visitors/: its config, uploads, crawls, composed data and runs. Paths resolve
        inside it, so no visitor can read, search, train on or list another's files. Every visitor still shares
        the app's one Run: they may watch the run going, and only its owner may act on it. A local app has one
        workspace."""
        if not self.hosted:
            return self
        name = hashlib.sha256(owner.encode()).hexdigest()[:20] if owner else "anonymous"
        now = time.time()
        if now - self._seen.get("sweep", now) >= SWEEP_EVERY_S:
            self.sweep(now)
        with self._visitors_lock:
            folder = self.workspace / VISITORS / name
            if name not in self._visitors:
                for sub in ("data", "runs"):
                    (folder / sub).mkdir(parents=True, exist_ok=True)
                self._visitors[name] = dataclasses.replace(self, workspace=folder)
            if now - self._seen.get(name, 0.0) >= 60:
                self._seen[name] = now
                with contextlib.suppress(OSError):
                    (folder / SEEN_NAME).touch()
            return self._visitors[name]

    def sweep(self, now: float | None = None) -> list[Path]:
        """Hosted: remove the folders of visitors not seen for keep_days (never the one whose run is going) and
        download or export copies older than a day. Returns what was removed; a folder that cannot be removed is
        left for the next sweep."""
        now = time.time() if now is None else now
        self._seen["sweep"] = now
        removed: list[Path] = []
        busy = Path(self.run.current_dir).resolve() if self.run.active and self.run.current_dir else None
        visitors = self.workspace / VISITORS
        if self.keep_days > 0 and visitors.is_dir():
            for folder in visitors.iterdir():
                if not folder.is_dir() or _last_seen(folder) > now - self.keep_days * 86400:
                    continue
                if busy is not None and busy.is_relative_to(folder.resolve()):
                    continue
                with self._visitors_lock:  # a visitor arriving now waits, then gets a fresh folder
                    shutil.rmtree(folder, ignore_errors=True)
                    self._visitors.pop(folder.name, None)
                    self._seen.pop(folder.name, None)
                if not folder.exists():
                    removed.append(folder)
        for prefix in COPY_PREFIXES:
            for folder in Path(tempfile.gettempdir()).glob(prefix + "*"):
                with contextlib.suppress(OSError):
                    if folder.is_dir() and folder.stat().st_mtime < now - COPY_KEEP_S:
                        shutil.rmtree(folder)
                        removed.append(folder)
        return removed

    def over_quota(self, adding: int = 0) -> tuple[float, float] | None:
        """Hosted: (MB the visitor's folder would hold with `adding` more bytes, the quota) when that is over the
        quota, else None. Checked where a visitor adds to their folder (an upload, a crawl, a composed file, a new
        run); a run already going is not cut off by it."""
        if not self.hosted or not self.quota_mb:
            return None
        used = adding
        for path in self.workspace.rglob("*"):
            with contextlib.suppress(OSError):
                if path.is_file() and not path.is_symlink():
                    used += path.stat().st_size
        return (used / 1e6, self.quota_mb) if used / 1e6 > self.quota_mb else None

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
        """Hosted mode: a path outside the app's folders is refused, judged as the loaders will resolve it
        (beside the workspace config, after `~`, `..` and links); Hub ids pass for model fields."""
        try:
            self.resolve(value, name)
        except PathRefused as e:
            return str(e)
        return None

    def resolve(self, value: str | None, name: str) -> str:
        """The path a tab hands to a loader for a user-given value: resolved beside the workspace (then, on a local
        app, the working directory), so what is checked is what is opened; a model field's Hub id stays an id.

        Hosted: PathRefused for anything outside the app's folders, including a Hub-shaped name that exists as a
        folder in the server's working directory (the model loader would open that folder, not the Hub's).
        """
        text = (value or "").strip()
        if not text:
            return ""
        roots = self.allowed_roots if self.hosted else None
        path = resolve_user_path(text, self.workspace, roots=roots, field=name, hub_ok=name in MODEL_FIELDS)
        if path is not None:
            return str(path)
        if self.hosted and Path(text).expanduser().exists():
            raise PathRefused(f"{name}: {text} is outside the app's folders; upload the file or pick one from the "
                              "lists.")
        return text

    def servable(self, path: str | os.PathLike) -> str:
        """A file to hand to one visitor's download box. A hosted app serves nothing from its workspace
        (launch_kwargs blocks it), so the file is copied to a private temporary folder first."""
        if not self.hosted:
            return str(path)
        folder = Path(tempfile.mkdtemp(prefix="embedgui-dl-"))
        return str(shutil.copy2(path, folder / Path(path).name))  # a path object is no value for a gr.File

    def export_dir(self) -> Path:
        """Where model zips are written: the workspace's exports folder, or a private temporary folder when
        hosted (so one visitor's export is never listed or served to another)."""
        return Path(tempfile.mkdtemp(prefix="embedgui-export-")) if self.hosted else self.workspace / "exports"

    def trained_models(self) -> list[str]:
        """Run folders that hold a saved model (newest first, as the run list)."""
        from ..engine.runs import list_runs

        return [r.path for r in list_runs(self.runs_dir) if r.has_model]


def _last_seen(folder: Path) -> float:
    """A visitor folder's last visit: its .last_seen file, or for a folder from before those files the newest of
    what it holds two levels down (config, uploads, run folders)."""
    with contextlib.suppress(OSError):
        return (folder / SEEN_NAME).stat().st_mtime
    newest = 0.0
    for path in [folder, *folder.glob("*"), *folder.glob("*/*")]:
        with contextlib.suppress(OSError):
            newest = max(newest, path.stat().st_mtime)
    return newest
