"""Pick the device and the mixed-precision dtype: CUDA, then MPS, then CPU; bf16 on a CPU only where it is faster."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from .files import atomic_write_text

log = logging.getLogger(__name__)


class DeviceError(RuntimeError):
    """The configured device is not available on this machine."""


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda, then mps, then cpu; an explicit device that is missing is a clear error."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("device: 'cuda' was asked for but no CUDA GPU is visible; set device to auto or cpu.")
    if name == "mps" and not _mps_available():
        raise DeviceError("device: 'mps' was asked for but Apple MPS is not available; set device to auto or cpu.")
    return torch.device(name)


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


@dataclass(frozen=True)
class Precision:
    """How a step runs: autocast dtype (None = plain fp32) and whether fp16 needs a gradient scaler."""

    autocast_dtype: torch.dtype | None
    use_grad_scaler: bool
    reason: str

    @property
    def name(self) -> str:
        return {None: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[self.autocast_dtype]


def precision_named(name: str, device: torch.device, reason: str) -> Precision:
    """The plan for a precision name ("float32", "bfloat16", "float16") on device, e.g. the one a snapshot used."""
    dtype = {"float32": None, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
    return Precision(dtype, dtype is torch.float16 and device.type == "cuda", reason)


def resolve_precision(dtype: str, device: torch.device) -> Precision:
    """Map config.dtype to a mixed-precision plan for this device.

    Weights stay float32 (master copy) and autocast runs the matmuls in half precision, which is what keeps
    AdamW stable; pooling, normalisation and the loss are computed in float32 regardless.
    """
    kind = device.type
    if dtype == "float32":
        return Precision(None, False, "dtype float32 asked for")
    if dtype == "bfloat16":
        if kind == "cuda" and not torch.cuda.is_bf16_supported():
            raise DeviceError("dtype: this GPU does not support bfloat16; set dtype to auto or float16.")
        return Precision(torch.bfloat16, False, "dtype bfloat16 asked for")
    if dtype == "float16":
        return Precision(torch.float16, kind == "cuda", "dtype float16 asked for")
    # auto
    if kind == "cuda":
        if torch.cuda.is_bf16_supported():
            return Precision(torch.bfloat16, False, "auto: this GPU supports bfloat16")
        return Precision(torch.float16, True, "auto: GPU without bfloat16, float16 with a gradient scaler")
    if kind == "mps":
        return Precision(torch.float16, False, "auto: Apple MPS runs float16")
    fast, why = cpu_bf16_is_faster()
    if fast:
        return Precision(torch.bfloat16, False, f"auto: {why}")
    return Precision(None, False, f"auto: {why}")


def precision_for_resume(dtype: str, device: torch.device, was: str | None, was_device: str | None) -> Precision:
    """The precision of a run; on a resume (was = the snapshot's precision) dtype auto keeps the snapshot's.

    A run that trained in bf16 resumes in bf16 even if the probe would now say otherwise, so it matches an
    uninterrupted run; where that cannot be (another device, an explicit other dtype) a warning says why.
    """
    if dtype != "auto" or was is None:
        precision = resolve_precision(dtype, device)
        if was and was != precision.name:
            log.warning("The snapshot trained in %s but dtype %s is set, so this resumed run does not match an "
                        "uninterrupted one; set dtype to %s to keep it.", was, dtype, was)
        return precision
    no_bf16_now = was == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported()
    if was_device != device.type or no_bf16_now:
        precision = resolve_precision("auto", device)
        if precision.name != was:
            log.warning("The snapshot trained in %s on %s; this run is on %s, which gets %s (%s), so it does not "
                        "match an uninterrupted run.", was, was_device, device, precision.name, precision.reason)
        return precision
    return precision_named(was, device, f"auto: kept {was} from the snapshot, so the resumed run matches")


def _cpu_info() -> tuple[str, set[str] | None]:
    """The CPU model name and its feature flags on Linux (flags None where /proc/cpuinfo does not exist)."""
    path = Path("/proc/cpuinfo")
    if not path.exists():
        return platform.processor() or platform.machine(), None
    model, flags = "", set()
    for line in path.read_text(errors="replace").splitlines():
        if not model and line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
        elif line.startswith(("flags", "Features")):  # x86 says flags, ARM says Features
            flags = set(line.split(":", 1)[1].split())
            break
    return model or platform.machine(), flags


def _cpu_flags() -> set[str] | None:
    return _cpu_info()[1]


# The probe: a matmul shaped like a small encoder's feed-forward layer (1024 tokens x 384 -> 1536), big enough
# that the kernel's speed, not call overhead, is measured; about 1.2 GFLOP, a few tens of ms on one core. A small
# matmul first screens out emulated bf16 (tens of times slower), which at the full size would take seconds.
PROBE_SHAPE = (1024, 384, 1536)
SCREEN_SHAPE = (256, 256, 256)
PROBE_ROUNDS = 7
PROBE_BUDGET_S = 0.4  # stop adding rounds past this; the whole probe stays under half a second


def _probe_seconds(shape: tuple[int, int, int] = PROBE_SHAPE, rounds: int = PROBE_ROUNDS,
                   budget_s: float = PROBE_BUDGET_S) -> tuple[float, float, int]:
    """Median seconds of one fp32 and one bf16 matmul, and the rounds measured (warm-up, interleaved rounds)."""
    m, k, n = shape
    g = torch.Generator().manual_seed(0)  # a private generator: the probe must not shift the run's random stream
    a32, b32 = torch.randn(m, k, generator=g), torch.randn(k, n, generator=g)
    a16, b16 = a32.to(torch.bfloat16), b32.to(torch.bfloat16)
    start = time.perf_counter()
    torch.mm(a32, b32)  # warm-up: the first call pays for kernel selection and page faults
    torch.mm(a16, b16)
    fp32: list[float] = []
    bf16: list[float] = []
    # Interleaved rounds: a burst of load from another process hits both dtypes alike; the median drops outliers.
    while len(fp32) < rounds:
        t = time.perf_counter()
        torch.mm(a32, b32)
        fp32.append(time.perf_counter() - t)
        t = time.perf_counter()
        torch.mm(a16, b16)
        bf16.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget_s:
            break
    return statistics.median(fp32), statistics.median(bf16), len(fp32)


def cache_dir() -> Path:
    """Where embedgui keeps small per-machine facts: $EMBEDGUI_CACHE_DIR, else ~/.cache/embedgui."""
    env = os.environ.get("EMBEDGUI_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "embedgui"


CACHE_NAME = "cpu_precision.json"


def _machine_key() -> str:
    """What the probe's verdict depends on: the CPU model, its flags, the machine type and torch's version."""
    model, flags = _cpu_info()
    text = "|".join([model, platform.machine(), " ".join(sorted(flags or ())), torch.__version__])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


_verdict: tuple[bool, str] | None = None  # this process's answer: the probe runs at most once per process


def cpu_bf16_is_faster() -> tuple[bool, str]:
    """Whether bf16 matmuls beat fp32 on this CPU, decided once per machine, with the reason.

    Native bf16 (AVX512-BF16 or AMX) runs about 2.5x fp32; without it bf16 is emulated and can be ~100x slower.
    So: no native flag on x86 Linux -> fp32 with no probe; otherwise a short matmul probe decides, and its verdict
    is kept in cache_dir()/cpu_precision.json so that every later process (the app, the CLI, a resumed run) on
    this machine picks the same precision. EMBEDGUI_CPU_BF16=0/1 overrides everything.
    """
    global _verdict
    forced = os.environ.get("EMBEDGUI_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1", f"EMBEDGUI_CPU_BF16={forced}"
    flags = _cpu_flags()
    if flags is not None and not ({"avx512_bf16", "amx_bf16"} & flags) and platform.machine() in ("x86_64", "AMD64"):
        return False, "CPU has no native bfloat16 (no AVX512-BF16/AMX), float32"
    if _verdict is not None:
        return _verdict
    path = cache_dir() / CACHE_NAME
    key = _machine_key()
    cached = _read_cache(path).get(key)
    if isinstance(cached, dict) and isinstance(cached.get("bf16"), bool) and isinstance(cached.get("why"), str):
        _verdict = cached["bf16"], f"{cached['why']} (cached in {path})"
    else:
        _verdict = _probe_verdict()
        _write_cache(path, key, *_verdict)
    return _verdict


def _probe_verdict() -> tuple[bool, str]:
    fp32, bf16, rounds = _probe_seconds(SCREEN_SHAPE, rounds=3, budget_s=0.05)
    shape = SCREEN_SHAPE
    if bf16 < 2 * fp32:  # not emulated: measure at a size that shows the kernels' real speed
        fp32, bf16, rounds = _probe_seconds()
        shape = PROBE_SHAPE
    faster = bf16 < fp32 / 1.2  # a clear margin: autocast adds casts that the probe does not see
    verdict = "bfloat16" if faster else "float32"
    why = (f"CPU matmul probe {'x'.join(map(str, shape))}, median of {rounds}: bf16 {bf16 * 1e3:.2f} ms vs fp32 "
           f"{fp32 * 1e3:.2f} ms, {verdict}")
    log.info(why)
    return faster, why


def _write_cache(path: Path, key: str, bf16: bool, why: str) -> None:
    data = _read_cache(path)
    data[key] = {"bf16": bf16, "why": why, "torch": torch.__version__, "time": time.time()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=2) + "\n")
    except OSError as e:  # a read-only home only costs a probe per process
        log.debug("Could not cache the CPU precision verdict in %s: %s", path, e)
