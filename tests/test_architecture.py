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
    """(line, module) of every absolute import in a file, function bodies included.

    ``from survey import alerts`` imports the module survey.alerts; ``from survey import x`` where
    x is not a submodule imports the package itself (its ``__init__``), and is judged as such.
    """
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            folder = ROOT / node.module.replace(".", "/")
            for alias in node.names:
                submodule = (folder / f"{alias.name}.py").exists() or (folder / alias.name).is_dir()
                found.append((node.lineno, f"{node.module}.{alias.name}" if submodule else node.module))
    return sorted(set(found))


def imports_in_functions(path: Path) -> list[tuple[int, str]]:
    """(line, module) of the imports of product modules written inside a function body."""
    found = []
    for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            for node in ast.walk(function):
                if isinstance(node, ast.Import):
                    found += [(node.lineno, alias.name) for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    found.append((node.lineno, node.module if node.level == 0 else "." * node.level))
    return [(line, module) for line, module in found
            if module.startswith(".") or module.split(".")[0] in PACKAGES]


def violations() -> list[str]:
    problems = []
    for path in product_modules():
        package = path.relative_to(ROOT).parts[0]
        for line, module in imports_of(path):
            target = module.split(".")[0]
            if target not in PACKAGES or target == package or target in BELOW[package]:
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


# Where an import inside a function is the design, not a hidden cycle: the app factory and each
# package's init_app wire the app together; the CLI and the worker build an app on demand.
WIRING = {"core/cli.py", "core/worker.py"}


def lazy_product_imports() -> list[str]:
    problems = []
    for path in product_modules():
        relative = path.relative_to(ROOT).as_posix()
        if path.name == "__init__.py" or relative in WIRING:
            continue
        problems += [f"{relative}:{line} imports {module} inside a function"
                     for line, module in imports_in_functions(path)]
    return problems


def test_no_product_module_imports_another_inside_a_function():
    """A function-level import of the product hides a cycle: import at the top, or move the rule
    to where both can import it (third-party imports kept lazy for start-up time are not counted)."""
    assert lazy_product_imports() == []


def test_the_lazy_import_check_and_the_bare_package_rule_catch_what_they_should(tmp_path, monkeypatch):
    """Positive controls: a function-level import of the product, and an import of a higher
    package's ``__init__`` (``from complaints import something_defined_there``)."""
    (tmp_path / "survey").mkdir()
    (tmp_path / "survey" / "lazy.py").write_text("def f():\n    from survey import models\n    import json\n")
    (tmp_path / "survey" / "models.py").write_text("")
    (tmp_path / "survey" / "__init__.py").write_text("def init_app():\n    from survey import models\n")
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "bare.py").write_text("from survey import init_app\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert lazy_product_imports() == ["survey/lazy.py:2 imports survey inside a function"]
    assert violations() == ["core/bare.py:1 imports survey"]
