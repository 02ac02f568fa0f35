"""Imports point one way, from the work toward its foundations (docs/architecture.md).

Every module of an app (tests and migrations aside) may import only apps to its left in
``LAYERS``. An app's entry points (``api*.py``, ``views*.py``, ``urls.py``, ``forms*.py``,
``panels.py``) may also use the HTTP machinery of ``api`` and ``web`` (permission decorators,
shared schemas) and the roles of ``org`` (``catalog`` is below ``org`` but its pages declare
``catalog.view``). ``web`` and ``api`` sit on top. Imports inside functions count too."""

from __future__ import annotations

import ast
from pathlib import Path

LAYERS = ["core", "records", "catalog", "org", "customers", "imports", "notifications", "tickets", "parts",
          "assets", "dispatch", "feedback", "charges", "quality",
          "staff"]
TOP = {"web", "api"}
ROOT = Path(__file__).resolve().parents[2]  # the aftersales package


def _imported_apps(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for n in names:
            parts = n.split(".")
            if parts[0] == "aftersales" and len(parts) > 1:
                found.add(parts[1])
    return found


def _modules(app: str):
    for p in sorted((ROOT / app).rglob("*.py")):
        rel = p.relative_to(ROOT / app).parts
        if rel[0] in ("tests", "migrations"):
            continue
        yield p


ENTRY_POINTS = ("api", "views", "urls", "forms", "panels")


def _is_entry_point(path: Path) -> bool:
    return path.stem.split("_")[0] in ENTRY_POINTS


def test_every_app_is_placed():
    apps = {p.name for p in ROOT.iterdir() if (p / "apps.py").exists()}
    assert apps == set(LAYERS) | TOP


def test_imports_point_toward_the_foundations():
    wrong = []
    for i, app in enumerate(LAYERS):
        for path in _modules(app):
            allowed = set(LAYERS[: i + 1]) | ({"api", "web", "org"} if _is_entry_point(path) else set())
            for other in _imported_apps(path) - allowed:
                if other in LAYERS or other in TOP:
                    wrong.append(f"{path.relative_to(ROOT)} imports aftersales.{other}")
    for path in _modules("api"):  # the API never reaches into the pages
        if "web" in _imported_apps(path):
            wrong.append(f"{path.relative_to(ROOT)} imports aftersales.web")
    assert wrong == []
