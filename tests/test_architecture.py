"""The shape of the code: which package may import which (docs/architecture.md, section 1).

Every import of the product is read from the source with ``ast``, including the ones inside
functions, so a "lazy" import cannot hide a dependency. Packages are layered:

    core  <-  organisation  <-  survey, complaints  <-  analytics  <-  exports

A package may import the layers below it and nothing above. Between the two feature packages
of one layer, and from any feature into a public API of another, only the pairs in
``ALLOWED`` are accepted: keep that list short, and give each entry its reason.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "organisation", "survey", "complaints", "analytics", "exports")
# What each package may import freely (besides itself).
BELOW: dict[str, set[str]] = {
    "core": set(),
    "organisation": {"core"},
    "survey": {"core", "organisation"},
    "complaints": {"core", "organisation"},
    "analytics": {"core", "organisation", "survey", "complaints"},
    "exports": {"core", "organisation", "survey", "complaints", "analytics"},
}
# (importing package, imported module) pairs allowed across the layers above.
ALLOWED: dict[tuple[str, str], str] = {
    ("complaints", "survey.alerts"): "survey's public alert API: ratings a complaint links to, alerts it becomes",
}


def product_modules() -> list[Path]:
    return sorted(p for package in PACKAGES if (ROOT / package).is_dir() for p in (ROOT / package).rglob("*.py"))


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in a file, function bodies included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            # "from survey import alerts" imports the module survey.alerts
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names
                      if (ROOT / node.module.replace(".", "/") / f"{alias.name}.py").exists()
                      or (ROOT / node.module.replace(".", "/") / alias.name).is_dir()]
    return found


def violations() -> list[str]:
    problems = []
    for path in product_modules():
        package = path.relative_to(ROOT).parts[0]
        for line, module in imports_of(path):
            target = module.split(".")[0]
            if target not in PACKAGES or target == package or target in BELOW[package]:
                continue
            if module == target:
                # "from survey import alerts" is judged by the module it names, recorded separately
                continue
            if any(module == allowed or module.startswith(allowed + ".")
                   for (importer, allowed) in ALLOWED if importer == package):
                continue
            problems.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return problems


def test_every_import_between_packages_follows_the_layers():
    assert violations() == []


def test_the_check_sees_imports_inside_functions(tmp_path, monkeypatch):
    """A positive control: a lazy import of a higher layer is caught."""
    fake = tmp_path / "core"
    fake.mkdir()
    (fake / "sneaky.py").write_text("def f():\n    from complaints import intake\n    return intake\n")
    (tmp_path / "complaints").mkdir()
    (tmp_path / "complaints" / "intake.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert violations() == ["core/sneaky.py:2 imports complaints.intake"]


@pytest.mark.parametrize("pair", sorted(ALLOWED))
def test_each_allowed_pair_is_still_needed(pair):
    importer, module = pair
    used = [m for p in (ROOT / importer).rglob("*.py") for _l, m in imports_of(p)
            if m == module or m.startswith(module + ".")]
    assert used, f"{importer} no longer imports {module}: remove it from ALLOWED"


def test_views_are_imported_by_no_service_or_job():
    """Inside a package, views import services, never the reverse (the package's __init__ wires views)."""
    problems = []
    for path in product_modules():
        name = path.stem
        if "views" in name or name == "__init__" or name in ("blueprints", "nav"):
            continue
        for line, module in imports_of(path):
            last = module.split(".")[-1]
            if last.startswith("views"):
                problems.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert problems == []
