"""Questionnaire definitions: item types, scales, validation, scoring.

A template version's definition is plain JSON so that it can be hashed,
copied, diffed and kept immutable once published:

    {"title": str, "intro": str,
     "dimensions": [{"code": str, "name": str, "weight": float}],
     "items": [{"code": str, "type": ITEM_TYPE, "text": str, "required": bool,
                "dimension": str | None, "role": "overall" | "recommend" | None,
                "options": [{"value": str, "label": str, "score": float | None, "na": bool}],
                "show_if": {"item": str, "max_score": float} | None,
                "alert_values": [str], "contact": bool, "max_length": int}]}

Scores are on 0-100 (the national 得分 and Press Ganey convention). "Not
applicable" answers are stored but never scored: they are left out, never
counted as zero.
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from flask_babel import gettext
from flask_babel import lazy_gettext as _l

SCALE5 = "scale5"      # 5-point satisfaction scale, shown as faces
FREQ4 = "freq4"        # 从未如此 … 总是如此, with explicit "not applicable" answers
YESNO = "yesno"
SINGLE = "single"      # single choice; options may carry scores
MULTI = "multi"        # multiple choice (reason chips); unscored
TEXT = "text"
ITEM_TYPES = (SCALE5, FREQ4, YESNO, SINGLE, MULTI, TEXT)
ITEM_TYPE_LABELS = {SCALE5: _l("5 级满意度（表情）"), FREQ4: _l("4 级频度（从未如此…总是如此）"), YESNO: _l("是/否"),
                    SINGLE: _l("单选"), MULTI: _l("多选"), TEXT: _l("文本")}
CHOICE_TYPES = (SCALE5, FREQ4, YESNO, SINGLE, MULTI)

SCALE5_OPTIONS = [
    {"value": "1", "label": "非常不满意", "score": 0.0, "na": False},
    {"value": "2", "label": "不满意", "score": 25.0, "na": False},
    {"value": "3", "label": "一般", "score": 50.0, "na": False},
    {"value": "4", "label": "满意", "score": 75.0, "na": False},
    {"value": "5", "label": "非常满意", "score": 100.0, "na": False},
]
FREQ4_OPTIONS = [
    {"value": "1", "label": "从未如此", "score": 0.0, "na": False},
    {"value": "2", "label": "有时如此", "score": 33.33, "na": False},
    {"value": "3", "label": "经常如此", "score": 66.67, "na": False},
    {"value": "4", "label": "总是如此", "score": 100.0, "na": False},
]
YESNO_OPTIONS = [
    {"value": "yes", "label": "是", "score": None, "na": False},
    {"value": "no", "label": "否", "score": None, "na": False},
]
CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]{1,39}$")
MAX_ITEMS = 80
MAX_TEXT = 2000


class DefinitionError(ValueError):
    """A definition breaks a rule; the message names the item code."""


def standard_options(item_type: str) -> list[dict[str, Any]] | None:
    standard: dict[str, list[dict[str, Any]]] = {SCALE5: SCALE5_OPTIONS, FREQ4: FREQ4_OPTIONS, YESNO: YESNO_OPTIONS}
    return standard.get(item_type)


def na_option(value: str, label: str) -> dict[str, Any]:
    return {"value": value, "label": label, "score": None, "na": True}


def normalise(definition: dict[str, Any]) -> dict[str, Any]:
    """Fill defaults and standard options so that stored definitions are complete."""
    out: dict[str, Any] = {"title": str(definition.get("title", "")).strip(),
                           "intro": str(definition.get("intro", "")).strip(), "dimensions": [], "items": []}
    for dim in definition.get("dimensions", []):
        out["dimensions"].append({"code": str(dim["code"]).strip(), "name": str(dim.get("name", "")).strip(),
                                  "weight": float(dim.get("weight", 1.0))})
    for raw in definition.get("items", []):
        item_type = raw.get("type")
        item = {
            "code": str(raw.get("code", "")).strip(),
            "type": item_type,
            "text": str(raw.get("text", "")).strip(),
            "required": bool(raw.get("required", False)),
            "dimension": raw.get("dimension") or None,
            "role": raw.get("role") or None,
            "options": [],
            # Numbers normalised so that equal content always hashes the same (50 and 50.0).
            "show_if": {"item": str(raw["show_if"].get("item", "")),
                        "max_score": float(raw["show_if"].get("max_score", 100))} if raw.get("show_if") else None,
            "alert_values": [str(v) for v in raw.get("alert_values", [])],
            "contact": bool(raw.get("contact", False)),
            "max_length": int(raw.get("max_length", 500)) if item_type == TEXT else None,
            "help": str(raw.get("help", "")).strip(),
        }
        standard = standard_options(item_type)
        extra = [dict(o) for o in raw.get("options", [])]
        if standard is not None:
            # Standard scales keep their fixed options; only N/A answers may be added.
            item["options"] = [dict(o) for o in standard] + [
                {"value": str(o["value"]), "label": str(o["label"]), "score": None, "na": True}
                for o in extra if o.get("na")]
        else:
            item["options"] = [{"value": str(o["value"]).strip(), "label": str(o["label"]).strip(),
                                "score": None if o.get("score") in (None, "") else float(o["score"]),
                                "na": bool(o.get("na", False))} for o in extra]
        out["items"].append(item)
    return out


def validate(definition: dict[str, Any]) -> None:
    """Raise DefinitionError naming the first broken rule."""
    items = definition["items"]
    if not definition["title"]:
        raise DefinitionError(gettext("问卷标题不能为空。"))
    if not items:
        raise DefinitionError(gettext("问卷至少需要一个题目。"))
    if len(items) > MAX_ITEMS:
        raise DefinitionError(gettext("问卷最多 %(n)d 个题目。", n=MAX_ITEMS))
    dimensions = {d["code"] for d in definition["dimensions"]}
    for dim in definition["dimensions"]:
        # NaN and infinity are not JSON: PostgreSQL would refuse the whole definition.
        if not math.isfinite(dim["weight"]) or dim["weight"] < 0:
            raise DefinitionError(gettext("维度 %(code)s 的权重须为不小于 0 的数字。", code=dim["code"]))
    seen: set[str] = set()
    for item in items:
        code = item["code"]
        if not CODE_RE.match(code):
            raise DefinitionError(gettext("题目编码“%(code)s”无效：只能用大写字母、数字和下划线，以字母开头。",
                                          code=code))
        if code in seen:
            raise DefinitionError(gettext("题目编码 %(code)s 重复。", code=code))
        seen.add(code)
        if item["type"] not in ITEM_TYPES:
            raise DefinitionError(gettext("题目 %(code)s 的题型无效。", code=code))
        if not item["text"]:
            raise DefinitionError(gettext("题目 %(code)s 的题干不能为空。", code=code))
        if item["dimension"] and item["dimension"] not in dimensions:
            raise DefinitionError(gettext("题目 %(code)s 所属维度 %(dim)s 不存在。", code=code, dim=item["dimension"]))
        if item["type"] in CHOICE_TYPES:
            values = [o["value"] for o in item["options"]]
            if len(values) < 2:
                raise DefinitionError(gettext("题目 %(code)s 至少需要两个选项。", code=code))
            if len(set(values)) != len(values) or any(not v for v in values):
                raise DefinitionError(gettext("题目 %(code)s 的选项值不能为空或重复。", code=code))
            if any(not o["label"] for o in item["options"]):
                raise DefinitionError(gettext("题目 %(code)s 的选项文字不能为空。", code=code))
        if any(o["score"] is not None and not math.isfinite(o["score"]) for o in item["options"]):
            raise DefinitionError(gettext("题目 %(code)s 的选项分数须为有限的数字。", code=code))
        show_if = item["show_if"]
        if show_if and not math.isfinite(show_if.get("max_score", 100)):
            raise DefinitionError(gettext("题目 %(code)s 的显示条件分数须为有限的数字。", code=code))
        if show_if and show_if.get("item") not in seen - {code}:
            raise DefinitionError(gettext("题目 %(code)s 的显示条件必须引用它之前的题目。", code=code))
        if item["dimension"] and not is_scored(item):
            raise DefinitionError(gettext("题目 %(code)s 不计分，不能归入维度。", code=code))


def is_scored(item: dict[str, Any]) -> bool:
    return any(o["score"] is not None for o in item["options"])


def scale_signature(item: dict[str, Any]) -> tuple:
    """What must not change for an item code across versions: its type and scored scale."""
    scored = tuple((o["value"], o["score"]) for o in item["options"] if o["score"] is not None)
    return (item["type"], scored)


def check_compatible(previous: list[dict[str, Any]], new: dict[str, Any]) -> None:
    """Item codes keep their type and scale across all versions of a template."""
    known: dict[str, tuple] = {}
    for definition in previous:
        for item in definition["items"]:
            known.setdefault(item["code"], scale_signature(item))
    for item in new["items"]:
        before = known.get(item["code"])
        if before is not None and before != scale_signature(item):
            raise DefinitionError(gettext(
                "题目编码 %(code)s 在以前的版本中是另一种题型或量表，不能更改；请为新题目使用新编码。",
                code=item["code"]))


def content_hash(definition: dict[str, Any]) -> str:
    canonical = json.dumps(definition, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def item_by_code(definition: dict[str, Any], code: str) -> dict[str, Any] | None:
    return next((i for i in definition["items"] if i["code"] == code), None)


def overall_item(definition: dict[str, Any]) -> dict[str, Any] | None:
    return next((i for i in definition["items"] if i.get("role") == "overall"), None)


def contact_item(definition: dict[str, Any]) -> dict[str, Any] | None:
    """The item by which the patient asks to be contacted (flagged ``contact``), if the questionnaire has one."""
    return next((i for i in definition["items"] if i.get("contact")), None)


def asks_for_contact(definition: dict[str, Any], answers: list[ParsedAnswer]) -> bool:
    """Whether the answers ask to be contacted: the contact item answered "yes"."""
    item = contact_item(definition)
    return item is not None and any(a.code == item["code"] and a.value == "yes" for a in answers)


@dataclass
class ParsedAnswer:
    code: str
    value: Any
    score: float | None
    not_applicable: bool


class AnswerError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def parse_answers(definition: dict[str, Any], get, getlist) -> list[ParsedAnswer]:
    """Read answers from submitted form data (``get``/``getlist`` of a MultiDict).

    Unknown option values and over-long texts are refused with the item's code;
    items hidden by their condition are dropped.
    """
    answers: dict[str, ParsedAnswer] = {}
    for item in definition["items"]:
        code = item["code"]
        field = f"q_{code}"
        show_if = item.get("show_if")
        if show_if:
            trigger = answers.get(show_if["item"])
            if trigger is None or trigger.score is None or trigger.score > float(show_if.get("max_score", 100)):
                continue
        if item["type"] == TEXT:
            text = (get(field) or "").strip()
            if len(text) > (item.get("max_length") or 500):
                raise AnswerError(code, gettext("内容太长，请不超过 %(n)d 字。", n=item.get("max_length") or 500))
            if text:
                answers[code] = ParsedAnswer(code, text, None, False)
            elif item["required"]:
                raise AnswerError(code, gettext("请填写此题。"))
            continue
        options = {o["value"]: o for o in item["options"]}
        if item["type"] == MULTI:
            chosen = [v for v in getlist(field) if v]
            if any(v not in options for v in chosen):
                raise AnswerError(code, gettext("选项无效，请重新选择。"))
            if chosen:
                ordered = [o["value"] for o in item["options"] if o["value"] in chosen]
                answers[code] = ParsedAnswer(code, ordered, None, False)
            elif item["required"]:
                raise AnswerError(code, gettext("请至少选择一项。"))
            continue
        value = get(field)
        if value in (None, ""):
            if item["required"]:
                raise AnswerError(code, gettext("请选择一项。"))
            continue
        option = options.get(value)
        if option is None:
            raise AnswerError(code, gettext("选项无效，请重新选择。"))
        answers[code] = ParsedAnswer(code, value, None if option["na"] else option["score"], bool(option["na"]))
    return list(answers.values())


def overall_score(definition: dict[str, Any], answers: list[ParsedAnswer]) -> float | None:
    """The response's headline score: its overall item, else the weighted mean of its dimensions."""
    by_code = {a.code: a for a in answers}
    overall = overall_item(definition)
    if overall is not None and by_code.get(overall["code"]) and by_code[overall["code"]].score is not None:
        return by_code[overall["code"]].score
    scores = dimension_scores(definition, answers)
    weights = {d["code"]: d["weight"] for d in definition["dimensions"]}
    total = sum(weights[c] for c in scores)
    if not scores or total == 0:
        return None
    return round(sum(scores[c] * weights[c] for c in scores) / total, 2)


def dimension_scores(definition: dict[str, Any], answers: list[ParsedAnswer]) -> dict[str, float]:
    """Per dimension, the mean of answered scored items; valid only if at least half were answered."""
    by_code = {a.code: a for a in answers}
    result = {}
    for dim in definition["dimensions"]:
        items = [i for i in definition["items"] if i["dimension"] == dim["code"]]
        answered = [by_code[i["code"]] for i in items if i["code"] in by_code]
        scored = [a.score for a in answered if a.score is not None]
        applicable = [i for i in items if not (i["code"] in by_code and by_code[i["code"]].not_applicable)]
        if scored and len(scored) * 2 >= len(applicable):
            result[dim["code"]] = round(sum(scored) / len(scored), 2)
    return result
