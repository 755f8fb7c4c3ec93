"""The questionnaire editor: a draft's definition as form rows, and back.

Dimensions and each item's options are rows of small fields (code, name, weight; value, text, score,
not applicable) that are added, removed and moved with submit buttons, so the editor works as a plain
form without JavaScript (static/js/survey_editor.js does the same in the page when scripts run). Every
row button is named ROW_BUTTON and says what it does in its value: "add:items-2-options",
"remove:items-2-options-1", "up:dimensions-0", "down:dimensions-0". A row button changes the rows and
shows the form again, nothing saved; the save button checks every row and puts the problem at the row.
"""
from __future__ import annotations

import math
import re
from typing import Any

from flask_babel import gettext

from survey import definitions
from survey.forms import DimensionRowForm, DraftForm, ItemForm, OptionRowForm
from survey.versioning import VersionError

ROW_BUTTON = "row"
_ROW_ACTION = re.compile(r"^(add|remove|up|down):(dimensions|items-(\d{1,3})-options)(?:-(\d{1,3}))?$")
BLANK_OPTION: dict[str, Any] = {"value": "", "label": "", "score": "", "na": False}
BLANK_DIMENSION: dict[str, Any] = {"code": "", "name": "", "weight": ""}  # an empty weight is 1
NEW_ITEM_OPTIONS = 2  # a blank item starts with this many blank option rows
MAX_ROWS = 60         # rows per list: more is a broken or hostile request


class RowActionError(VersionError):
    """A row button that names no row of this form (400)."""


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def definition_to_form(definition: dict[str, Any]) -> dict[str, Any]:
    """The editor's data for a definition: standard scales show only their "not applicable" options."""
    items = []
    for item in definition["items"]:
        standard = definitions.standard_options(item["type"])
        options = [o for o in item["options"] if not (standard and not o.get("na"))]
        items.append({
            "code": item["code"], "type": item["type"], "text": item["text"], "required": item["required"],
            "dimension": item.get("dimension") or "", "role": item.get("role") or "",
            "options": [{"value": o["value"], "label": o["label"], "score": "" if o.get("na") else
                         _number(o.get("score")), "na": bool(o.get("na"))} for o in options],
            "alert_values": ",".join(item.get("alert_values") or []), "contact": item.get("contact", False),
            "max_length": item.get("max_length"),
            "show_if": ("" if not item.get("show_if")
                        else f"{item['show_if']['item']}<={item['show_if']['max_score']:g}"),
        })
    return {"title": definition["title"], "intro": definition["intro"],
            "dimensions": [{"code": d["code"], "name": d["name"], "weight": _number(d["weight"])}
                           for d in definition["dimensions"]],
            "items": items}


def _blank(row: OptionRowForm | DimensionRowForm) -> bool:
    return not any((field.data or "").strip() for name, field in row._fields.items() if name != "na")


def _finite(field, *, low: float, high: float | None, message: str) -> float | None:
    """The field's number, or None with ``message`` put on the field when it is not one in [low, high]."""
    text = (field.data or "").strip().replace("，", ".").replace("．", ".")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < low or (high is not None and value > high):
        field.errors = [*field.errors, message]
        return None
    return value


def _required(field, message: str) -> str:
    """A row's text box, stripped; ``message`` on the box when it is empty."""
    text = (field.data or "").strip()
    if not text:
        field.errors = [*field.errors, message]
    return text


def _dimensions(form: DraftForm) -> tuple[list[dict[str, Any]], bool]:
    rows, ok = [], True
    for entry in form.dimensions.entries:
        row = entry.form
        if _blank(row):
            continue
        code = _required(row.code, gettext("请填写维度编码。"))
        name = _required(row.name, gettext("请填写维度名称。"))
        ok = ok and bool(code) and bool(name)
        weight = 1.0
        if (row.weight.data or "").strip():
            parsed = _finite(row.weight, low=0, high=None, message=gettext("权重须为不小于 0 的数字。"))
            ok = ok and parsed is not None
            weight = parsed if parsed is not None else weight
        rows.append({"code": code, "name": name, "weight": weight})
    return rows, ok


def _options(item: ItemForm, standard: bool) -> tuple[list[dict[str, Any]], bool]:
    rows, ok = [], True
    for entry in item.options.entries:
        row = entry.form
        if _blank(row):
            continue
        na = bool(row.na.data)
        if standard and not na:
            # A standard scale's own options are fixed (definitions.normalise): never drop a row silently.
            row.value.errors = [*row.value.errors, gettext("此题型的选项是固定的，只能添加“不适用”选项；"
                                                           "请勾选“不适用”或删除此行。")]
            ok = False
            continue
        value = _required(row.value, gettext("请填写选项值。"))
        label = _required(row.label, gettext("请填写选项文字。"))
        ok = ok and bool(value) and bool(label)
        score = None
        if (row.score.data or "").strip() and not na:
            score = _finite(row.score, low=0, high=100, message=gettext("分数须为 0 到 100 之间的数字。"))
            ok = ok and score is not None
        rows.append({"value": value, "label": label, "score": score, "na": na})
    return rows, ok


def form_to_definition(form: DraftForm) -> dict[str, Any]:
    """The editor's fields as a raw definition; a row that cannot be read gets its message at the row, and
    VersionError says there are some."""
    dimensions, ok = _dimensions(form)
    items = []
    for entry in form.items.entries:
        data = entry.form.data
        if data["remove"] or not (data["code"] or data["text"]):
            continue
        options, options_ok = _options(entry.form, definitions.standard_options(data["type"]) is not None)
        ok = ok and options_ok
        show_if = None
        if data["show_if"]:
            ref, _, limit = data["show_if"].partition("<=")
            try:
                show_if = {"item": ref, "max_score": float(limit or 100)}
            except ValueError:
                raise VersionError(gettext("题目 %(code)s 的显示条件格式应为：题目编码<=分数",
                                           code=data["code"])) from None
        items.append({"code": data["code"].strip().upper(), "type": data["type"], "text": data["text"],
                      "required": data["required"], "dimension": (data["dimension"] or "").strip() or None,
                      "role": data["role"] or None, "options": options, "show_if": show_if,
                      "alert_values": [v.strip() for v in (data["alert_values"] or "").split(",") if v.strip()],
                      "contact": data["contact"], "max_length": data["max_length"] or 500})
    if not ok:
        raise VersionError(gettext("有的行填写有误，请按标出的提示修改。"))
    return {"title": form.title.data, "intro": form.intro.data or "", "dimensions": dimensions, "items": items}


def _editor_data(form: DraftForm) -> dict[str, Any]:
    """What the form holds, as the data a new DraftForm is built from."""
    data = form.data
    return {"title": data["title"], "intro": data["intro"], "add_items": data["add_items"],
            "dimensions": [dict(row) for row in data["dimensions"]],
            "items": [{**item, "options": [dict(o) for o in item["options"]]} for item in data["items"]]}


def apply_row_action(form: DraftForm, action: str) -> DraftForm:
    """A new form holding what ``form`` holds with one row added, removed or moved (nothing is saved)."""
    match = _ROW_ACTION.match(action or "")
    if match is None:
        raise RowActionError(gettext("无法识别的操作，请刷新页面后重试。"))
    verb, _path, item, row = match.group(1), match.group(2), match.group(3), match.group(4)
    data = _editor_data(form)
    if item is None:
        rows, blank = data["dimensions"], BLANK_DIMENSION
    elif int(item) < len(data["items"]):
        rows, blank = data["items"][int(item)]["options"], BLANK_OPTION
    else:
        raise RowActionError(gettext("无法识别的操作，请刷新页面后重试。"))
    if verb == "add":
        if row is not None or len(rows) >= MAX_ROWS:
            raise RowActionError(gettext("无法识别的操作，请刷新页面后重试。"))
        rows.append(dict(blank))
    else:
        index = int(row) if row is not None else -1
        if not 0 <= index < len(rows):
            raise RowActionError(gettext("无法识别的操作，请刷新页面后重试。"))
        if verb == "remove":
            rows.pop(index)
        else:
            other = index - 1 if verb == "up" else index + 1
            if 0 <= other < len(rows):
                rows[index], rows[other] = rows[other], rows[index]
    return DraftForm(formdata=None, data=data)


def add_blank_items(form: DraftForm, count: int) -> None:
    """Append ``count`` blank items, each with a few blank option rows to fill in."""
    for _ in range(count):
        form.items.append_entry({"options": [dict(BLANK_OPTION) for _ in range(NEW_ITEM_OPTIONS)]})
