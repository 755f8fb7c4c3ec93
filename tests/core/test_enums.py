"""Labelled enums: each member declares its label once, and enum columns read back as members."""
from __future__ import annotations

import pytest
from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text
from sqlalchemy.exc import StatementError

from core.enums import LabelledEnum, enum_label
from core.extensions import db
from organisation.models import Institution, InstitutionLevel, Role, StaffRole


class Colour(LabelledEnum):
    RED = "red", _l("红色"), {"赤"}
    BLUE = "blue", _l("蓝色")


def test_a_member_is_its_value_and_carries_its_label(ctx):
    assert Colour.RED == "red" and Colour("blue") is Colour.BLUE and f"{Colour.RED}" == "red"
    with force_locale("zh_Hans"):
        assert str(Colour.RED.label) == "红色"
    assert Colour.labels() == {"red": Colour.RED.label, "blue": Colour.BLUE.label}
    assert Colour.choices() == [("red", Colour.RED.label), ("blue", Colour.BLUE.label)]
    assert Colour.is_value("red") and not Colour.is_value("green") and not Colour.is_value(None)


@pytest.mark.parametrize("typed, member", [("red", Colour.RED), ("红色", Colour.RED), ("赤", Colour.RED),
                                           (" 蓝色 ", Colour.BLUE), ("green", None), ("", None)])
def test_imports_accept_the_code_the_chinese_label_or_an_alias(ctx, typed, member):
    assert Colour.from_label(typed) is member


def test_an_enum_column_reads_back_as_its_enum(rmyy):
    level = db.session.scalar(select(Institution.level).where(Institution.id == rmyy.id))
    assert isinstance(level, InstitutionLevel)
    roles = db.session.scalars(select(StaffRole.role)).all()
    assert roles and all(isinstance(role, Role) for role in roles)


def test_an_enum_column_refuses_a_value_outside_the_enum(rmyy):
    rmyy.level = "quaternary"
    with pytest.raises(StatementError):
        db.session.flush()
    db.session.rollback()


def test_an_unknown_stored_value_is_shown_as_it_is_by_templates(app, ctx):
    assert str(enum_label("InstitutionLevel", "tertiary")) in ("三级", "Tertiary")
    assert enum_label("InstitutionLevel", "legacy-value") == "legacy-value"
    assert enum_label("NoSuchEnum", "x") == "x"
    assert enum_label("InstitutionLevel", None) == "—"  # a value not given yet, never "None"


def test_stored_text_is_the_plain_value(rmyy):
    stored = db.session.execute(text("SELECT level FROM institution WHERE id = :id"), {"id": rmyy.id}).scalar()
    assert type(stored) is str and stored == InstitutionLevel(stored).value
