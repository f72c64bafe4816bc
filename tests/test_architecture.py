from __future__ import annotations

import ast
import subprocess
import sys

from conftest import ROOT


def _imported_modules(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            # from ..ui import x inside embedgui/engine is embedgui.ui
            prefix = "embedgui." if node.level >= 2 else ""
            names.append(prefix + (node.module or ""))
    return names


def test_engine_never_imports_gradio():
    offenders = [
        f"{path.name}: {name}"
        for path in (ROOT / "embedgui" / "engine").rglob("*.py")
        for name in _imported_modules(ast.parse(path.read_text(encoding="utf-8")))
        if name.split(".")[0] == "gradio" or name.startswith("embedgui.ui")
    ]
    assert offenders == []


def test_importing_the_engine_loads_no_ui():
    code = ("import sys, embedgui.engine.trainer, embedgui.engine.data, embedgui.engine.modeling; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gradio', 'plotly')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
