"""The questionnaire editor's rows: options and dimensions added, removed and moved with plain submit buttons,
each row checked on its own (issue 10, point 7)."""
from __future__ import annotations

import re

import pytest

from core.extensions import db
from survey import versioning
from survey.models import SurveyTemplate
from tests.survey.conftest import staff_login
from tests.survey.test_staff_views import base, editor_fields, item_index, text


@pytest.fixture
def window_copy(client, rmyy, builtin_templates) -> SurveyTemplate:
    """rmyy's own copy of the window questionnaire, a draft, with the admin logged in."""
    staff_login(client, "rmyy-admin")
    return versioning.copy_template(builtin_templates["WIN"], rmyy, code="WIN_ROWS", name="窗口（本院）",
                                    actor="test")


def edit_url(rmyy, template) -> str:
    return f"{base(rmyy)}/templates/{template.id}/edit"


def option_rows(page, item: int) -> list[tuple[str, str, str]]:
    """(value, label, score) of each option row an item shows, in order."""
    fields = editor_fields(page)
    rows = []
    n = 0
    while f"items-{item}-options-{n}-value" in fields:
        prefix = f"items-{item}-options-{n}"
        rows.append((fields[f"{prefix}-value"], fields[f"{prefix}-label"], fields[f"{prefix}-score"]))
        n += 1
    return rows


def saved_options(template, code: str) -> list[tuple[str, str]]:
    db.session.expire_all()
    item = next(i for i in template.draft.definition["items"] if i["code"] == code)
    return [(o["value"], o["label"]) for o in item["options"]]


def test_options_are_rows_not_a_pipe_syntax_box(client, rmyy, window_copy):
    page = client.get(edit_url(rmyy, window_copy))
    reasons = item_index(page, "WIN_REASON")
    assert option_rows(page, reasons)[:2] == [("R_WAIT", "等候时间长", ""), ("R_ATTITUDE", "态度不好", "")]
    assert "|" not in "".join(re.findall(r"<textarea[^>]*>(.*?)</textarea>", text(page), re.S))
    assert f'value="add:items-{reasons}-options"' in text(page)
    assert f'value="up:items-{reasons}-options-1"' in text(page)
    comment = item_index(page, "WIN_COMMENT")  # a text question: no option rows to add
    assert f'value="add:items-{comment}-options"' not in text(page) and "文本题没有选项。" in text(page)


def test_the_first_button_of_the_form_saves(client, rmyy, window_copy):
    """Enter in a text box presses the form's first submit button: it must save, not move a row."""
    page = text(client.get(edit_url(rmyy, window_copy)))
    form = page[page.index('<form method="post" class="form editor"'):]
    first_button = re.search(r"<button[^>]*>", form).group(0)
    assert 'type="submit"' in first_button and "name=" not in first_button


def test_add_remove_and_move_rows_without_javascript_then_save(client, rmyy, window_copy):
    url = edit_url(rmyy, window_copy)
    page = client.get(url)
    reasons = item_index(page, "WIN_REASON")
    before = option_rows(page, reasons)
    draft_hash = window_copy.draft.content_hash

    added = client.post(url, data={**editor_fields(page), "row": f"add:items-{reasons}-options"})
    assert added.status_code == 200
    assert option_rows(added, reasons) == before + [("", "", "")]
    db.session.expire_all()
    assert window_copy.draft.content_hash == draft_hash  # a row button saves nothing

    last = len(before)
    filled = editor_fields(added, **{f"items-{reasons}-options-{last}-value": "R_PARK",
                                     f"items-{reasons}-options-{last}-label": "停车难"})
    moved = client.post(url, data={**filled, "row": f"up:items-{reasons}-options-{last}"})
    assert option_rows(moved, reasons)[-2:] == [("R_PARK", "停车难", ""), before[-1]]
    removed = client.post(url, data={**editor_fields(moved), "row": f"remove:items-{reasons}-options-0"})
    assert option_rows(removed, reasons)[0] == before[1]

    saved = client.post(url, data=editor_fields(removed))
    assert saved.status_code == 302
    expected = [(v, label) for v, label, _s in before[1:-1]] + [("R_PARK", "停车难"), (before[-1][0], before[-1][1])]
    assert saved_options(window_copy, "WIN_REASON") == expected


def test_dimensions_are_rows_too(client, rmyy, builtin_templates):
    staff_login(client, "rmyy-admin")
    template = versioning.copy_template(builtin_templates["OPD"], rmyy, code="OPD_ROWS", name="门诊", actor="test")
    url = edit_url(rmyy, template)
    page = client.get(url)
    fields = editor_fields(page)
    assert (fields["dimensions-0-code"], fields["dimensions-0-name"], fields["dimensions-0-weight"]) == (
        "REGISTRATION", "挂号流程", "1")
    down = client.post(url, data={**fields, "row": "down:dimensions-0", "dimensions-0-weight": "2"})
    fields = editor_fields(down)
    assert (fields["dimensions-0-code"], fields["dimensions-1-code"], fields["dimensions-1-weight"]) == (
        "COMMUNICATION", "REGISTRATION", "2")
    assert client.post(url, data=fields).status_code == 302
    db.session.expire_all()
    dimensions = template.draft.definition["dimensions"]
    assert [(d["code"], d["weight"]) for d in dimensions[:2]] == [("COMMUNICATION", 1.0), ("REGISTRATION", 2.0)]


def _row_error(page, prefix: str) -> str:
    cell = re.search(rf'<td class="cell-\w+ has-error">\s*<label[^>]*for="{prefix}"[^>]*>.*?</td>', text(page),
                     re.S)
    assert cell is not None, f"no error at {prefix}"
    return re.sub(r"<[^>]+>", "", cell.group(0)).strip()


def test_each_bad_row_gets_its_own_message_and_nothing_is_saved(client, rmyy, window_copy):
    url = edit_url(rmyy, window_copy)
    page = client.get(url)
    reasons = item_index(page, "WIN_REASON")
    draft_hash = window_copy.draft.content_hash
    row = f"items-{reasons}-options"
    bad = editor_fields(page, **{f"{row}-0-score": "很多", f"{row}-1-score": "150", f"{row}-2-label": "",
                                 "dimensions-0-code": "", "dimensions-0-name": "只有名称", "dimensions-0-weight": "-1"})

    response = client.post(url, data=bad)

    assert response.status_code == 400
    assert "有的行填写有误" in text(response)
    assert "分数须为 0 到 100 之间的数字。" in _row_error(response, f"{row}-0-score")
    assert "分数须为 0 到 100 之间的数字。" in _row_error(response, f"{row}-1-score")
    assert "请填写选项文字。" in _row_error(response, f"{row}-2-label")
    assert "请填写维度编码。" in _row_error(response, "dimensions-0-code")
    assert "权重须为不小于 0 的数字。" in _row_error(response, "dimensions-0-weight")
    assert editor_fields(response)[f"{row}-0-score"] == "很多"  # what was typed stays to be corrected
    db.session.expire_all()
    assert window_copy.draft.content_hash == draft_hash


def test_a_fixed_scale_accepts_only_not_applicable_rows(client, rmyy, window_copy):
    url = edit_url(rmyy, window_copy)
    page = client.get(url)
    overall = item_index(page, "WIN_OVERALL")
    assert option_rows(page, overall) == []  # the five faces are not rows to edit
    added = client.post(url, data={**editor_fields(page), "row": f"add:items-{overall}-options"})
    row = f"items-{overall}-options-0"
    refused = client.post(url, data=editor_fields(added, **{f"{row}-value": "6", f"{row}-label": "说不清"}))
    assert refused.status_code == 400
    assert "只能添加“不适用”选项" in _row_error(refused, f"{row}-value")

    accepted = client.post(url, data=editor_fields(added, **{f"{row}-value": "NA", f"{row}-label": "不适用",
                                                             f"{row}-na": "y"}))
    assert accepted.status_code == 302
    assert saved_options(window_copy, "WIN_OVERALL")[-1] == ("NA", "不适用")


@pytest.mark.parametrize("action", ["add:items-99-options", "up:items-1-options-99", "remove:dimensions-0",
                                    "explode:dimensions-0", "add:items-1-options-0", "up:../../etc"])
def test_a_row_button_naming_no_row_is_a_400_with_a_message(client, rmyy, window_copy, action):
    url = edit_url(rmyy, window_copy)
    response = client.post(url, data={**editor_fields(client.get(url)), "row": action})
    assert response.status_code == 400
    assert "无法识别的操作" in text(response)


def test_a_new_blank_item_comes_with_option_rows_to_fill_in(client, rmyy, window_copy):
    url = edit_url(rmyy, window_copy)
    page = client.get(url)
    n = len(window_copy.draft.definition["items"])
    with_blank = client.post(url, data=editor_fields(page, add_items="1"))
    assert with_blank.status_code == 200
    assert option_rows(with_blank, n) == [("", "", ""), ("", "", "")]
    saved = client.post(url, data=editor_fields(with_blank, **{
        f"items-{n}-code": "WIN_WHO", f"items-{n}-type": "single", f"items-{n}-text": "您今天办理的是？",
        f"items-{n}-options-0-value": "A", f"items-{n}-options-0-label": "挂号",
        f"items-{n}-options-1-value": "B", f"items-{n}-options-1-label": "缴费", "add_items": "0"}))
    assert saved.status_code == 302
    assert saved_options(window_copy, "WIN_WHO") == [("A", "挂号"), ("B", "缴费")]
