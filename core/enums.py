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
    def labels(cls) -> dict[str, Any]:
        return {m.value: m.label for m in cls}

    @classmethod
    def choices(cls) -> list[tuple[str, Any]]:
        return [(m.value, m.label) for m in cls]

    @classmethod
    def from_label(cls, text: str) -> Self | None:
        """Accept a code, its Chinese or English label, or an alias (for imports)."""
        from flask_babel import force_locale

        text = (text or "").strip()
        for member in cls:
            with force_locale("zh_Hans"):  # files are filled in in Chinese whatever the page language
                chinese = str(member.label)
            if text.lower() == member.value or text in {chinese, str(member.label), *member.aliases()}:
                return member
        return None
