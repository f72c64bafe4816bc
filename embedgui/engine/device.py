"""Pick the device and the mixed-precision dtype: CUDA, then MPS, then CPU; bf16 on a CPU only where it is faster."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import platform
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from .files import atomic_write_text

log = logging.getLogger(__name__)


class DeviceError(RuntimeError):
    """The configured device is not available on this machine."""


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda, then mps, then cpu; an explicit device that is missing is a clear error."""
    configure_threads()
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


THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_threads: str | None = None  # what configure_threads decided in this process
_full_threads: int | None = None  # the most threads worth using here (usable cores, at most torch's default)


def usable_cores() -> int:
    """CPU cores this process may really use: its CPU affinity, capped by a cgroup CPU quota (containers)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    for quota_file, period_file in (("cpu.max", None), ("cpu/cpu.cfs_quota_us", "cpu/cpu.cfs_period_us")):
        try:  # cgroup v2 "quota period" ("max": none), v1 two files (-1: none); --cpus=1.5 gives 150000/100000
            fields = Path("/sys/fs/cgroup", quota_file).read_text().split()
            quota = fields[0]
            period = fields[1] if period_file is None else Path("/sys/fs/cgroup", period_file).read_text().strip()
            if quota not in ("max", "-1"):
                cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
            break
        except (OSError, ValueError, IndexError):
            continue
    return max(1, cores)


def _busy_cores() -> int:
    """Cores other processes keep busy now: the whole part of the 1-minute load average (0 where unknown)."""
    try:
        return int(os.getloadavg()[0])
    except (AttributeError, OSError):
        return 0


def _faster_thread_count(many: int, few: int, rounds: int = 5) -> int:
    """Whichever of two thread counts runs a small matmul faster now (interleaved rounds, medians; ~0.1 s)."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(256, 384, generator=g), torch.randn(384, 1536, generator=g)
    before = torch.get_num_threads()
    times: dict[int, list[float]] = {many: [], few: []}
    try:
        for _ in range(rounds + 1):  # the first round warms up
            for n in (many, few):
                torch.set_num_threads(n)
                t = time.perf_counter()
                for _ in range(4):
                    torch.mm(a, b)
                times[n].append(time.perf_counter() - t)
    finally:
        torch.set_num_threads(before)
    fast_many, fast_few = statistics.median(times[many][1:]), statistics.median(times[few][1:])
    return many if fast_many < fast_few * 0.9 else few


def configure_threads() -> str:
    """torch's CPU threads for the cores there are, decided once per process; the decision in words.

    torch starts one intra-op thread per physical core of the machine. When some of those cores are not really
    free (a container limited by affinity or a CPU quota, or other processes keeping cores busy), every parallel
    operator waits for its slowest thread, which waits for the scheduler: on a 2-core machine with one core busy
    elsewhere a training step took 5x longer with 2 threads than with 1 (docs/performance.md). So the count is
    lowered to the usable cores minus the busy ones (the 1-minute load average, before this process starts
    working), at least 1 and never above torch's default (hyperthreads do not speed up matmuls); the inter-op
    pool is capped the same way. OMP_NUM_THREADS or MKL_NUM_THREADS set by the user: nothing is changed.
    Decided once per process (the inter-op pool cannot change later).
    """
    global _threads, _full_threads
    if _threads is not None:
        return _threads
    user = [v for v in THREAD_VARS if os.environ.get(v)]
    if user:
        _threads = f"{user[0]}={os.environ[user[0]]} set: torch threads left at {torch.get_num_threads()}"
        return _threads
    cores, busy = usable_cores(), _busy_cores()
    free = max(1, cores - busy)
    full = _full_threads = min(cores, torch.get_num_threads())
    if free < full:  # the load average lags (it still counts a process that just ended): measure both counts
        free = _faster_thread_count(full, free)
    if torch.get_num_threads() > free:
        torch.set_num_threads(free)
    try:
        if torch.get_num_interop_threads() > free:
            torch.set_num_interop_threads(free)
    except RuntimeError:  # only allowed before the first inter-op work; then it stays as it is
        pass
    _threads = f"{torch.get_num_threads()} torch threads for {cores} usable core(s), {busy} busy elsewhere"
    log.debug(_threads)
    return _threads


def _cpu_seconds(cpus: set[int]) -> float | None:
    """Busy seconds of these CPUs since boot, all processes together (Linux /proc/stat); None elsewhere."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = 0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
            busy += user + nice + system + irq + softirq + steal
    return busy / os.sysconf("SC_CLK_TCK")


DROP_AT, RAISE_AT = 0.35, 0.15  # share of a core other processes use at which a thread is given up / taken back


class ThreadGovernor:
    """Keeps torch's CPU threads at the cores other processes leave free, judged again every few seconds.

    configure_threads decides once, at the start. But a machine gets busy later: a web app serving visitors, a
    browser, a second job. Every parallel operator then waits for its slowest thread, and that thread waits for
    the scheduler. scripts/loadtest.py measured a 2-core machine with two threads while twenty visitors used the
    app: one step took 10 s, not 0.35 s. With one thread it kept 97% of its speed. So while a run trains on the
    CPU, `update()` measures how much CPU the other processes used since the last look: the busy time of this
    process's CPUs minus this process's own. It keeps the cores they leave free, never more than the full count.
    It runs on Linux, where /proc/stat gives that time, and does nothing when a CPU quota hides how many cores are
    really ours, or when OMP_NUM_THREADS / MKL_NUM_THREADS were set by the user.
    """

    def __init__(self, every: float = 5.0):
        self.every = every
        try:
            self.cpus = set(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            self.cpus = set()
        user_set = any(os.environ.get(v) for v in THREAD_VARS)
        self.enabled = (not user_set and _full_threads is not None and _full_threads > 1
                        and len(self.cpus) == usable_cores() and _cpu_seconds(self.cpus) is not None)
        self._last = self._reading() if self.enabled else None

    def _reading(self) -> tuple[float, float, float]:
        own = os.times()
        return time.perf_counter(), _cpu_seconds(self.cpus) or 0.0, own.user + own.system

    def update(self) -> str | None:
        """Adjusts the thread count if it is time to look again; the change in words, or None."""
        if not self.enabled or self._last is None or time.perf_counter() - self._last[0] < self.every:
            return None  # called every step: /proc/stat is read only when it is time to look
        now = self._reading()
        wall = now[0] - self._last[0]
        others = max(0.0, (now[1] - self._last[1]) - (now[2] - self._last[2])) / wall  # cores busy elsewhere
        self._last = now
        # A core counts as taken from about a third busy (sharing it stalls every operator more than it gives), and
        # as free again below a sixth: the gap keeps a load near the line from switching the count every look.
        have, free = torch.get_num_threads(), len(self.cpus) - others
        if free < have - DROP_AT:
            want = max(1, math.floor(free + DROP_AT))
        elif free > have + 1 - RAISE_AT:
            want = min(_full_threads or 1, math.floor(free + RAISE_AT))
        else:
            return None
        if want == have:
            return None
        torch.set_num_threads(want)
        return (f"CPU threads {have} -> {want}: other processes keep {others:.1f} of {len(self.cpus)} cores busy")


@contextlib.contextmanager
def side_threads(busy: bool) -> Iterator[None]:
    """Work beside a training run (search, evaluation, mining in the app): one CPU thread while `busy`.

    The run, in its own process, keeps the other cores; a second multithreaded job on them would stall every
    parallel operator of both (ThreadGovernor). torch's thread count is per calling thread here (OpenMP), so the
    handler's thread is set and put back; other threads are left alone.
    """
    if not busy:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
