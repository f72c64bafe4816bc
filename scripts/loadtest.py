"""Load test: many browser clients poll a training run and search while it trains, all over real HTTP.

    .venv/bin/python scripts/loadtest.py [--clients 20] [--quiet 40] [--load 60] [--corpus 3000]

Starts the app in this process on 127.0.0.1 (as launch.py does), starts a training run, measures its steps/s
with no clients, then with N browser-like sessions each polling the Train tab's timer (every second, or as the app
tells a page while many are open) and searching a corpus of a few thousand WordNet glosses every few seconds, then
quiet again (so drift is bracketed). Prints training speed kept under load, search and tick latency (p50/p95)
and errors.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def _corpus(folder: Path, n: int) -> Path:
    """n WordNet noun glosses (Debian's wordnet-base), else the sample glossary's texts repeated with numbers."""
    data = ROOT / ".cache/testdata/wordnet-base/usr/share/wordnet/data.noun"
    texts: list[str] = []
    if data.exists():
        for line in data.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith(" ") or "|" not in line:
                continue
            gloss = line.split("|", 1)[1].split(";")[0].strip()
            if gloss:
                texts.append(gloss)
            if len(texts) >= n:
                break
    if len(texts) < n:
        rows = [json.loads(x)["positive"] for x in (ROOT / "assets/sample_pairs.jsonl").read_text().splitlines()]
        texts += [f"{rows[i % len(rows)]} ({i})" for i in range(n - len(texts))]
    path = folder / "corpus.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return path


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def _speed(run, seconds: float) -> float:
    s0, t0 = run.snapshot().step, time.perf_counter()
    time.sleep(seconds)
    s1, t1 = run.snapshot().step, time.perf_counter()
    return (s1 - s0) / (t1 - t0)


def _endpoints(http, url: str) -> dict[str, tuple[int, list[bool], bool, int | None]]:
    """api_name -> (fn_index, which inputs are server-side state, queued, which output is a timer's interval), from
    /config as a browser reads it."""
    config = http.get(url + "config").json()
    kinds = {c["id"]: c.get("type") for c in config["components"]}
    return {d["api_name"]: (d["id"], [kinds.get(i) == "state" for i in d["inputs"]], d.get("queue") is not False,
                            next((n for n, o in enumerate(d["outputs"]) if kinds.get(o) == "timer"), None))
            for d in config["dependencies"] if d.get("api_name")}


async def _call(http, url: str, session: str, endpoint: tuple[int, list[bool], bool, int | None],
                values: list) -> list:
    """One event as a browser page sends it: join the queue, then read the session's stream until it completes
    (an event with queue=False is one plain request); its output values."""
    fn_index, is_state, queued, _ = endpoint
    it = iter(values)
    data = [None if state else next(it) for state in is_state]  # state lives on the server, per session
    body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None, "trigger_id": None}
    if not queued:
        answer = await http.post(url + "gradio_api/run/predict", json=body)
        answer.raise_for_status()
        return answer.json().get("data") or []
    joined = await http.post(url + "gradio_api/queue/join", json=body)
    joined.raise_for_status()
    event_id = joined.json()["event_id"]
    async with http.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session}) as stream:
        async for line in stream.aiter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                if not message.get("success", True):
                    raise RuntimeError(str(message.get("output"))[:200])
                return (message.get("output") or {}).get("data") or []
    raise RuntimeError("the stream ended before the event completed")


def run_clients(url: str, n_clients: int, seconds: float, search_every: float, corpus: Path) -> dict:
    """n_clients browser-like sessions: each polls the Train tab's timer once a second and searches now and then.

    They speak Gradio's own queue protocol (join, then the session's event stream) from one asyncio loop, as light
    as the pages would be on visitors' machines: a gradio_client per visitor (20 threads polling every 50 ms) took
    most of a core of the machine being measured.
    """
    import asyncio

    import httpx

    queries = [t.split()[0] for t in corpus.read_text().splitlines()[:200]]
    with httpx.Client(timeout=30) as http:
        endpoints = _endpoints(http, url)
    ticks: list[float] = []
    searches: list[float] = []
    errors: list[str] = []
    intervals: list[float] = []  # every timer interval the app sent a page

    async def client(n: int, http, deadline: float) -> None:
        rng, session, owner = random.Random(n), uuid.uuid4().hex, uuid.uuid4().hex  # owner: the browser's id
        next_search = time.perf_counter() + rng.uniform(0, search_every)
        every = 1.0  # the page's timer; the app may slow it down while many pages are open
        tick = endpoints["tick"]
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                outputs = await _call(http, url, session, tick, [False, None, owner])
                ticks.append(time.perf_counter() - started)
                update = outputs[tick[3]] if tick[3] is not None and len(outputs) > tick[3] else None
                if isinstance(update, dict) and isinstance(update.get("value"), (int, float)):
                    every = float(update["value"])
                    intervals.append(every)
                if time.perf_counter() >= next_search:
                    t0 = time.perf_counter()
                    await _call(http, url, session, endpoints["search"],
                                [rng.choice(queries), 5, None, "sentence-transformers/all-MiniLM-L6-v2", str(corpus),
                                 None, "", owner])
                    searches.append(time.perf_counter() - t0)
                    next_search = time.perf_counter() + search_every
            except Exception as e:  # noqa: BLE001 - the figure to report is "how many failed"
                errors.append(f"{type(e).__name__}: {e}")
            await asyncio.sleep(max(0.0, every - (time.perf_counter() - started)))  # as the page's timer

    async def all_clients() -> None:
        limits = httpx.Limits(max_connections=4 * n_clients, max_keepalive_connections=2 * n_clients)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            deadline = time.perf_counter() + seconds
            await asyncio.gather(*(client(n, http, deadline) for n in range(n_clients)))

    asyncio.run(all_clients())
    return {"ticks": ticks, "searches": searches, "errors": errors, "intervals": intervals}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--quiet", type=float, default=40.0, help="seconds measured with no clients, before and after")
    parser.add_argument("--load", type=float, default=60.0, help="seconds measured under load")
    parser.add_argument("--corpus", type=int, default=3000, help="texts in the search corpus")
    parser.add_argument("--search-every", type=float, default=3.0, help="seconds between one client's searches")
    parser.add_argument("--clients-only", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--corpus-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.clients_only:
        print(json.dumps(run_clients(args.clients_only, args.clients, args.load, args.search_every,
                                     args.corpus_file)))
        return {}

    import asyncio

    import httpx

    from embedgui.engine.config import config_from_dict
    from embedgui.ui.app import create_app, launch_kwargs
    from embedgui.ui.context import SAMPLE_PAIRS, AppContext

    workspace = Path(tempfile.mkdtemp(prefix="embedgui-load-"))
    ctx = AppContext.create(workspace)
    corpus = _corpus(ctx.data_dir, args.corpus)
    demo = create_app(ctx)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.queue(default_concurrency_limit=4).launch(server_name="127.0.0.1", server_port=port,
                                                    prevent_thread_lock=True, quiet=True, **launch_kwargs(ctx))
    url = f"http://127.0.0.1:{port}/"
    # the first search builds and caches the index; the load measures queries, as users repeat them
    with httpx.Client(timeout=30) as http:
        search = _endpoints(http, url)["search"]

    async def warm_up() -> None:
        async with httpx.AsyncClient(timeout=600) as http:
            await _call(http, url, uuid.uuid4().hex, search,
                        ["warm up", 5, None, "sentence-transformers/all-MiniLM-L6-v2", str(corpus), None, "", ""])

    asyncio.run(warm_up())

    config = config_from_dict({
        "train": {"batch_size": 16, "max_length": 64, "steps_per_epoch": 100000, "log_every": 1},
        "data": {"pairs_path": str(SAMPLE_PAIRS)},
        "output": {"save_dir": str(ctx.runs_dir), "save_name": "load-run"},
    })
    ctx.run.start(config)
    while ctx.run.snapshot().step < 5:  # past model loading and the first slow steps
        if not ctx.run.active:
            raise SystemExit(f"the run ended: {ctx.run.snapshot().message}")
        time.sleep(0.5)
    before = _speed(ctx.run, args.quiet)

    # The clients run in another process, as browsers do: in this one they would fight the server for the GIL.
    # It is niced, so on a small machine the figures measure the server's work more than the clients'.
    child = subprocess.Popen([sys.executable, __file__, "--clients-only", url, "--clients", str(args.clients),
                              "--load", str(args.load + 10), "--search-every", str(args.search_every),
                              "--corpus-file", str(corpus)], stdout=subprocess.PIPE, text=True,
                             preexec_fn=lambda: os.nice(10))  # real visitors' browsers are not on this machine
    time.sleep(5)  # clients connected and polling
    loaded = _speed(ctx.run, args.load)
    out, _ = child.communicate(timeout=args.load + 120)
    clients = json.loads(out.strip().splitlines()[-1])
    ticks, searches, errors = clients["ticks"], clients["searches"], clients["errors"]
    after = _speed(ctx.run, args.quiet)
    ctx.run.stop()
    ctx.run.wait(120)
    demo.close()

    quiet = (before + after) / 2
    result = {
        "clients": args.clients, "corpus_texts": args.corpus, "steps_per_s_quiet": round(quiet, 3),
        "steps_per_s_before": round(before, 3), "steps_per_s_after": round(after, 3),
        "steps_per_s_loaded": round(loaded, 3), "kept": round(loaded / quiet, 3) if quiet else None,
        "search_p50_s": round(_pct(searches, 0.5), 3), "search_p95_s": round(_pct(searches, 0.95), 3),
        "searches": len(searches), "tick_p50_s": round(_pct(ticks, 0.5), 3),
        "tick_p95_s": round(_pct(ticks, 0.95), 3), "ticks": len(ticks),
        "timer_seconds_sent": sorted(set(clients.get("intervals", []))), "errors": len(errors),
        "first_errors": errors[:3], "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    if ticks:
        print(f"training kept {result['kept']:.0%} of its speed under {args.clients} clients "
              f"({quiet:.2f} -> {loaded:.2f} steps/s); search p50 {result['search_p50_s']} s, "
              f"p95 {result['search_p95_s']} s over {len(searches)} queries; tick p95 {result['tick_p95_s']} s; "
              f"errors {len(errors)}; median tick {statistics.median(ticks):.3f} s")
    return result


if __name__ == "__main__":
    main()
