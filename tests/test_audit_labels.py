"""Every audit action the product records has a label, and so does every key of the data it keeps.

The product's source is read with ``ast`` (as tests/test_architecture.py reads its imports): each
call of ``record(actor, action, target, data)`` gives the action strings it can write — a literal,
either branch of a conditional, a local variable assigned literals, a parameter that the module's
own callers pass as literals, or one of the few computed actions listed in ``COMPUTED`` with the
values they take — and the literal keys of its data. Each must be labelled through
core.audit.register_audit_labels, so that the audit log never shows ``staff.login`` or ``walk_in``.
"""
from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

from complaints.models import ExtensionStatus
from complaints.workflow import Action
from core.audit import audit_labels, describe, record
from core.extensions import db
from organisation.models import Department, Institution, Region, StaffUser, Touchpoint
from tests.factories import demo_institution, demo_user

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "organisation", "survey", "complaints")

# Actions computed from a value: (module, the action expression) -> every action it can write.
COMPUTED: dict[tuple[str, str], Callable[[], set[str]]] = {
    ("complaints/workflow.py", "f'complaint.{action.value}'"): lambda: {f"complaint.{a.value}" for a in Action},
    ("complaints/pauses.py", "'complaint.extension_' + ext.status"):
        lambda: {f"complaint.extension_{s.value}" for s in (ExtensionStatus.APPROVED, ExtensionStatus.REJECTED)},
    ("organisation/services.py", "f\"{obj.__tablename__}.{('activate' if active else 'deactivate')}\""):
        lambda: {f"{model.__tablename__}.{verb}" for model in (Region, Institution, Department, Touchpoint, StaffUser)
                 for verb in ("activate", "deactivate")},
}


def _name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}


def _function(node: ast.AST, parents: dict) -> ast.FunctionDef | None:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            return node
    return None


class Unresolved(Exception):
    pass


def _strings(expr: ast.AST, tree: ast.AST, parents: dict, path: str) -> set[str]:
    """Every string ``expr`` can be, read from the source."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return {expr.value}
    if isinstance(expr, ast.IfExp):
        return _strings(expr.body, tree, parents, path) | _strings(expr.orelse, tree, parents, path)
    if (path, ast.unparse(expr)) in COMPUTED:
        return COMPUTED[path, ast.unparse(expr)]()
    if isinstance(expr, ast.Name):
        function = _function(expr, parents)
        if function is None:
            raise Unresolved(ast.unparse(expr))
        assigned = [node.value for node in ast.walk(function) if isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == expr.id for t in node.targets)]
        if assigned:
            return set().union(*(_strings(value, tree, parents, path) for value in assigned))
        if expr.id in {a.arg for a in function.args.args + function.args.kwonlyargs}:
            passed = [k.value for call in ast.walk(tree) if isinstance(call, ast.Call) and _name(call) == function.name
                      for k in call.keywords if k.arg == expr.id]
            if passed:
                return set().union(*(_strings(value, tree, parents, path) for value in passed))
    raise Unresolved(ast.unparse(expr))


def _data_keys(expr: ast.AST | None, parents: dict) -> set[str]:
    """The literal keys of a data argument: a dict literal, or a local dict built from literals."""
    if isinstance(expr, ast.Dict):
        keys = {k.value for k in expr.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
        for value in expr.values:  # {**({"note": ...} if note else {})}
            for node in ast.walk(value):
                if isinstance(node, ast.Dict):
                    keys |= _data_keys(node, parents)
        return keys
    if isinstance(expr, ast.Name) and (function := _function(expr, parents)) is not None:
        keys: set[str] = set()
        for node in ast.walk(function):
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                if any(isinstance(t, ast.Name) and t.id == expr.id for t in targets):
                    keys |= _data_keys(node.value, parents)
                for t in targets:
                    if (isinstance(t, ast.Subscript) and isinstance(t.value, ast.Name) and t.value.id == expr.id
                            and isinstance(t.slice, ast.Constant)):
                        keys.add(t.slice.value)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"
                  and isinstance(node.func.value, ast.Name) and node.func.value.id == expr.id and node.args):
                keys |= _data_keys(node.args[0], parents)
        return keys
    return set()


def recorded(root: Path = ROOT) -> tuple[dict[str, list[str]], dict[str, list[str]], list[str]]:
    """(action -> where, data key -> where, expressions that could not be read) over the product's source."""
    actions: dict[str, list[str]] = {}
    keys: dict[str, list[str]] = {}
    unresolved: list[str] = []
    for package in PACKAGES:
        for file in sorted((root / package).rglob("*.py")):
            path = file.relative_to(root).as_posix()
            tree = ast.parse(file.read_text(encoding="utf-8"), path)
            parents = _parents(tree)
            for call in ast.walk(tree):
                if not (isinstance(call, ast.Call) and _name(call) == "record" and len(call.args) >= 2):
                    continue
                where = f"{path}:{call.lineno}"
                try:
                    for action in _strings(call.args[1], tree, parents, path):
                        actions.setdefault(action, []).append(where)
                except Unresolved as exc:
                    unresolved.append(f"{where} {exc}")
                data = call.args[3] if len(call.args) > 3 else next(
                    (k.value for k in call.keywords if k.arg == "data"), None)
                for key in _data_keys(data, parents):
                    keys.setdefault(key, []).append(where)
    return actions, keys, unresolved


def test_every_recorded_action_can_be_read_from_the_source():
    _actions, _keys, unresolved = recorded()
    assert unresolved == [], ("write the action out, or list its values in COMPUTED", unresolved)


def test_every_recorded_action_has_a_label(app):
    actions, _keys, _unresolved = recorded()
    assert len(actions) > 100  # the reading works: the product records over a hundred kinds of action
    with app.app_context():
        labelled = audit_labels("actions")
    missing = {action: where for action, where in actions.items() if action not in labelled}
    assert missing == {}


def test_every_literal_data_key_has_a_label(app):
    _actions, keys, _unresolved = recorded()
    assert {"channel", "category", "from", "to", "reasons"} <= set(keys)
    with app.app_context():
        labelled = {key if isinstance(key, str) else key[1] for key in audit_labels("keys")}
    missing = {key: where for key, where in keys.items() if key not in labelled}
    assert missing == {}


def test_the_reading_catches_what_it_should(tmp_path, monkeypatch):
    """Positive controls: a literal, a conditional, a local variable, a parameter passed by the module,
    a computed action listed in COMPUTED, data keys, and an action that cannot be read."""
    (tmp_path / "core").mkdir()
    (tmp_path / "core" / "sample.py").write_text(
        "def a(ok):\n"
        "    record(x, 'made.up', t, {'alpha': 1, **({'beta': 2} if ok else {})})\n"
        "    record(x, 'yes.one' if ok else 'no.one', t)\n"
        "def b():\n"
        "    data = {'gamma': 1}\n"
        "    data['delta'] = 2\n"
        "    data.update({'epsilon': 3})\n"
        "    action = 'local.one'\n"
        "    record(x, action, t, data)\n"
        "def c(*, action):\n"
        "    record(x, action, t)\n"
        "def d():\n"
        "    c(action='passed.one')\n"
        "def e(thing):\n"
        "    record(x, f'hidden.{thing}', t)\n"
        "def f(active):\n"
        "    record(x, f'counted.{active}', t)\n")
    for package in PACKAGES[1:]:
        (tmp_path / package).mkdir()
    monkeypatch.setitem(COMPUTED, ("core/sample.py", "f'counted.{active}'"), lambda: {"counted.yes", "counted.no"})
    actions, keys, unresolved = recorded(tmp_path)
    assert set(actions) == {"made.up", "yes.one", "no.one", "local.one", "passed.one", "counted.yes", "counted.no"}
    assert set(keys) == {"alpha", "beta", "gamma", "delta", "epsilon"}
    assert unresolved == ["core/sample.py:15 f'hidden.{thing}'"]


def test_the_log_shows_labels_and_leaves_what_people_typed_as_typed(ctx, app):
    """渠道：来访, not channel: walk_in; an unknown value, a typed name and a date stay as stored."""
    from flask_babel import force_locale

    rmyy = demo_institution("rmyy")
    officer = demo_user("rmyy-officer")
    entry = record(officer, "complaint.register", ("complaint", 7),
                   {"channel": "walk_in", "category": "attitude", "has_contact": True, "departments": [3, 4]})
    odd = record(officer, "department.update", ("department", 9),
                 {"name": ["旧名称", "疼痛科（新设）"], "kind": ["clinical", "somewhere_new"]})
    grade = record("cli", "institution.update", rmyy, {"grade": ["a", "b"], "level": ["tertiary", "secondary"]})
    db.session.flush()
    with force_locale("zh_Hans"):
        shown = describe(entry)
        assert (shown.actor, shown.action, shown.target) == ("rmyy-officer", "登记投诉", "投诉案件 #7")
        assert shown.details == [("渠道", "来访"), ("投诉类别", "服务态度"), ("留有联系方式", "是"),
                                 ("涉及科室", "3、4")]
        assert describe(odd).details == [("名称", "旧名称 → 疼痛科（新设）"), ("类型", "临床科室 → somewhere_new")]
        assert describe(grade).actor == "系统管理员（命令行）"
        assert describe(grade).details == [("等次", "甲等 → 乙等"), ("等级", "三级 → 二级")]
    with force_locale("en"):
        assert describe(entry).details[:2] == [("Channel", "Walk-in"), ("Complaint category", "Staff attitude")]
        assert describe(odd).details[0][1] == "旧名称 → 疼痛科（新设）"
