"""Pick the device and the mixed-precision dtype: CUDA, then MPS, then CPU; bf16 on a CPU only where it is faster."""

from __future__ import annotations

import functools
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

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


def _cpu_flags() -> set[str] | None:
    """The CPU feature flags on Linux, None where /proc/cpuinfo does not exist."""
    path = Path("/proc/cpuinfo")
    if not path.exists():
        return None
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _matmul_seconds(dtype: torch.dtype, n: int, repeats: int = 3) -> float:
    g = torch.Generator().manual_seed(0)  # a private generator: the probe must not shift the run's random stream
    a = torch.randn(n, n, generator=g).to(dtype)
    b = torch.randn(n, n, generator=g).to(dtype)
    torch.mm(a, b)  # warm-up: first call pays for kernel selection
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return best


@functools.lru_cache(maxsize=1)
def cpu_bf16_is_faster() -> tuple[bool, str]:
    """Whether bf16 matmuls beat fp32 on this CPU, decided at run time, with the reason.

    Native bf16 (AVX512-BF16 or AMX) runs about 2.5x fp32; without it bf16 is emulated and can be ~100x slower.
    So: no native flag on Linux -> fp32 with no probe (the probe itself would be slow); otherwise a short
    matmul probe decides. EMBEDGUI_CPU_BF16=0/1 overrides both.
    """
    forced = os.environ.get("EMBEDGUI_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1", f"EMBEDGUI_CPU_BF16={forced}"
    flags = _cpu_flags()
    if flags is not None and not ({"avx512_bf16", "amx_bf16"} & flags) and platform.machine() in ("x86_64", "AMD64"):
        return False, "CPU has no native bfloat16 (no AVX512-BF16/AMX), float32"
    n = 512 if flags else 256
    fp32 = _matmul_seconds(torch.float32, n)
    bf16 = _matmul_seconds(torch.bfloat16, n)
    faster = bf16 < fp32 / 1.2  # a clear margin: autocast adds casts that a tiny probe does not see
    verdict = "bfloat16" if faster else "float32"
    why = f"CPU matmul probe {n}x{n}: bf16 {bf16 * 1e3:.2f} ms vs fp32 {fp32 * 1e3:.2f} ms, {verdict}"
    log.info(why)
    return faster, why
