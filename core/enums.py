"""String enums whose members carry their translatable label, declared once with the member.

    class Level(LabelledEnum):
        TERTIARY = "tertiary", _l("三级")
        SECONDARY = "secondary", _l("二级"), {"二级医院"}   # optional aliases accepted by imports

A member is its value (a ``str``): it compares equal to the stored text, serialises to JSON as
it, and is what ``core.db.EnumText`` columns hand back when a row is read.
"""
from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Self

from flask import Flask, current_app
from flask_babel import force_locale


class LabelledEnum(StrEnum):
    """A string enum whose members carry a translatable label and, optionally, import aliases."""

    _label: Any
    _aliases: frozenset[str]

    def __new__(cls, value: str, label: Any = None, aliases: Iterable[str] = ()) -> Self:
        member = str.__new__(cls, value)
        member._value_ = value
        member._label = label if label is not None else value
        member._aliases = frozenset(aliases)
        return member

    @property
    def label(self) -> Any:
        """The member's label (a lazy translation: str() it in the request's language)."""
        return self._label

    def aliases(self) -> frozenset[str]:
        return self._aliases

    @classmethod
    def is_value(cls, value: object) -> bool:
        """Whether ``value`` is one of the members' values (``"x" in Enum`` raises on Python 3.11)."""
        return isinstance(value, str) and value in cls._value2member_map_

    @classmethod
    def labels(cls) -> dict[str, Any]:
        return {m.value: m.label for m in cls}

    @classmethod
    def choices(cls) -> list[tuple[str, Any]]:
        return [(m.value, m.label) for m in cls]

    @classmethod
    def from_label(cls, text: str) -> Self | None:
        """Accept a code, its Chinese or English label, or an alias (for imports)."""

        text = (text or "").strip()
        for member in cls:
            with force_locale("zh_Hans"):  # files are filled in in Chinese whatever the page language
                chinese = str(member.label)
            if text.lower() == member.value or text in {chinese, str(member.label), *member.aliases()}:
                return member
        return None


# Templates show stored values by their labels: {{ enum_label('Status', complaint.status) }}.

def register_label_enums(app: Flask, *classes: type[LabelledEnum], **named: type[LabelledEnum]) -> None:
    """Make LabelledEnum classes available to templates' enum_label() by class name
    (or by the keyword name given, where two features use the same class name)."""
    registry = app.extensions.setdefault("label_enums", {})
    for name, cls in [(cls.__name__, cls) for cls in classes] + list(named.items()):
        if registry.get(name, cls) is not cls:
            raise ValueError(f"two label enums are registered as {name!r}; register one under another name")
        registry[name] = cls


def enum_label(enum_name: str, value: str | None) -> Any:
    """The translated label of a stored enum value, for templates (the value itself when unknown, "—" for none)."""
    if value is None:
        return "—"
    try:
        return current_app.extensions["label_enums"][enum_name](value).label
    except (KeyError, ValueError):
        return value


def init_app(app: Flask) -> None:
    app.jinja_env.globals["enum_label"] = enum_label
