"""The one phone-number rule: what people type becomes one stored number, everywhere."""
from __future__ import annotations

import pytest

from core.phone import InvalidPhone, normalise_phone


@pytest.mark.parametrize("typed, stored", [
    ("13900001234", "13900001234"),
    ("139-0000-1234", "13900001234"),
    ("139 0000 1234", "13900001234"),
    ("+86 139 0000 1234", "13900001234"),
    ("+86-13900001234", "13900001234"),
    ("0086 13900001234", "13900001234"),
    ("8613900001234", "13900001234"),
    ("１３９００００１２３４", "13900001234"),           # full-width digits from a Chinese keyboard
    ("１３９－００００－１２３４", "13900001234"),        # full-width dashes too
    ("139\u30000000\u30001234", "13900001234"),        # ideographic spaces
    ("  13900001234\n", "13900001234"),
    ("028-85551234", "02885551234"),
    ("0755 8555 1234", "075585551234"),
    ("(0755)85551234", "075585551234"),
    ("（0755）85551234", "075585551234"),
    ("010-6555 1234", "01065551234"),
])
def test_what_people_type_is_stored_as_digits(typed, stored):
    assert normalise_phone(typed) == stored


@pytest.mark.parametrize("typed", [None, "", "   ", "\u3000"])
def test_nothing_typed_is_none(typed):
    assert normalise_phone(typed) is None


@pytest.mark.parametrize("typed", [
    "12345", "2380013800", "1380013800a", "138001380001", "12900001234",  # 12x is no mobile prefix
    "+1 415 555 1234", "+8613900001234x", "139-0000-1234 转 8", "☎13900001234", "1" * 200, "٣٩٠٠٠٠١٢٣٤١",
])
def test_anything_else_is_refused_with_a_chinese_message(typed):
    with pytest.raises(InvalidPhone) as raised:
        normalise_phone(typed)
    assert "电话号码格式不正确" in str(raised.value)


def test_a_local_landline_without_area_code_only_where_the_form_allows_it():
    assert normalise_phone("8555 1234", local=True) == "85551234"
    with pytest.raises(InvalidPhone):
        normalise_phone("8555 1234")
