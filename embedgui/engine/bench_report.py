"""The benchmark's report as text: the tables printed by `bench --against` and written to docs/benchmarks.md."""

from __future__ import annotations

from typing import Any

from .benchmark import EMBEDGUI


def _metric(r: dict[str, Any], key: str) -> str:
    before, after = r["before"].get(key), r["after"].get(key)
    if before is None or after is None:
        return "-"
    return f"{before:.3f} -> {after:.3f}"


def report_tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, header, rows) of each table; the printed and the markdown report share them."""
    peaks = report["matmul_peak_flops"]
    main = []
    for r in report["results"]:
        mark = "" if r["reliable"] else "*"
        main.append([r["mode"], r["tool"], r["precision"], f"{r['step_s']:.3f}{mark}", f"{r['step_s_loop']:.3f}",
                     f"{r['pairs_per_s']:.1f}{mark}",
                     f"{r['tokens_per_s']:.0f}", f"{r['model_flops'] / 1e9:.1f}", f"{100 * r['peak_share']:.1f}%",
                     f"{r['peak_rss_mb']:.0f}", _metric(r, "recall@1"), _metric(r, "mrr@10")])
    ratio_rows = [[mode, f"{x['pairs_per_s']:.2f}x", f"{x['peak_rss']:.2f}x",
                   f"{x['recall@1_after_minus']:+.3f}" if "recall@1_after_minus" in x else "-"]
                  for mode, x in report["ratios"].items()]
    enc = [[e["precision"], str(e["texts"]), f"{e['embedgui_texts_per_s']:.1f}", f"{e['st_texts_per_s']:.1f}",
            f"{e['ratio']:.2f}x"] for e in report["encoding"]]
    first = report["memory"][0]["peak_rss_mb"] if report["memory"] else 1.0
    mem = [[str(m["batch_size"]), m["precision"], f"{m['peak_rss_mb']:.0f}", f"{m['peak_rss_mb'] / first:.2f}x"]
           for m in report["memory"]]
    peak_rows = [[name, f"{value / 1e9:.1f}"] for name, value in peaks.items()]
    return [
        ("Training", ["mode", "tool", "precision", "s/step", "s/step (loop clock)", "pairs/s", "tokens/s",
                      "model GFLOP/s", "of peak",
                      "peak RSS MiB", "recall@1 before -> after", "MRR@10 before -> after"], main),
        ("embedgui / sentence-transformers", ["mode", "pairs/s", "peak RSS", "recall@1 after (difference)"],
         ratio_rows),
        ("Evaluation encoding", ["precision", "texts", "embedgui texts/s", "sentence-transformers texts/s", "ratio"],
         enc),
        ("Training peak memory against the contrastive batch size (embedgui, dtype auto)",
         ["batch", "precision", "peak RSS MiB", "vs the first"], mem),
        ("Measured matmul peak", ["dtype", "GFLOP/s"], peak_rows),
    ]


def describe(report: dict[str, Any]) -> list[str]:
    """The lines above the tables: machine, model, data, settings."""
    m, s, d, model = report["machine"], report["settings"], report["data"], report["model"]
    versions = (f"torch {m['torch']}, transformers {m['transformers']}, "
                f"sentence-transformers {m['sentence_transformers']}")
    return [
        f"Machine: {m['cpu']} ({m['machine']}), {m['cores']} cores, torch threads {m['torch_threads']}, flags: "
        f"{' '.join(m['flags']) or 'none of note'}; native bf16: {'yes' if m['native_bf16'] else 'no'}; {versions}; "
        f"Python {m['python']}.",
        f"Model: {model['id']} ({model['params'] / 1e6:.1f} M parameters, {model['matmul_params'] / 1e6:.1f} M in "
        "matmuls: model FLOP/s = 6 x matmul parameters x real tokens/s).",
        f"Data: {d['source']}: {d['wordnet_pairs']} pairs; {d['train_pairs']} training pairs, "
        f"{d['held_out_terms']} held-out single-sense terms (split by term); {d['real_tokens_per_pair']:.1f} real "
        "tokens per pair (anchor + positive, no padding).",
        f"Settings: batch {s['batch_size']}, max_length {s['max_length']}, lr {s['lr']}, warmup {s['warmup_ratio']}, "
        f"weight decay {s['weight_decay']}, temperature {s['temperature']} (scale {1 / s['temperature']:g}), "
        f"steps {s['step_counts'][0]} and {s['step_counts'][1]} (time per step from the difference), "
        f"repeats {s['repeats']}, device {s['device']}.",
    ]


def notes(report: dict[str, Any]) -> list[str]:
    """Footnotes: what embedgui's dtype auto chose and why, and which figures the machine's noise spoiled."""
    out = [f"embedgui's dtype auto chose {r['precision']}: {r['precision_reason']}." for r in report["results"]
           if r["tool"] == EMBEDGUI and r["mode"] == "defaults"]
    if not all(r["reliable"] for r in report["results"]):
        out.append("* the long run was not slower than the short one (a busy machine): the figure is the long "
                   "run's whole time per step, start-up included, so a lower bound on the speed.")
    return out


def format_text(report: dict[str, Any]) -> str:
    """The report as plain-text tables for a terminal."""
    lines = describe(report)
    for title, header, rows in report_tables(report):
        widths = [max(len(c) for c in col) for col in zip(header, *rows)]
        lines += ["", title, "  ".join(h.ljust(w) for h, w in zip(header, widths))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines + ["", *notes(report)])


def format_markdown(report: dict[str, Any], heading: str = "", note: str = "") -> str:
    """The report as markdown (docs/benchmarks.md style)."""
    lines = [heading, ""] if heading else []
    if note:
        lines += [note, ""]
    lines += [f"- {line}" for line in describe(report)]
    for title, header, rows in report_tables(report):
        lines += ["", f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines + ["", *notes(report)]) + "\n"
