"""Questionnaire definitions: normalising, validating, version compatibility, parsing and scoring.

The golden fixture below was scored by hand (instruments.md 5(b)): item score
= the option's score_100, N/A dropped; a respondent's dimension is the mean
of the items answered, kept only when at least half of its applicable items
were answered; the response's score is its overall item, else the weighted
mean of its dimensions.
"""
from __future__ import annotations

import copy

import pytest
from werkzeug.datastructures import MultiDict

from survey import builtin, definitions
from survey.definitions import (
    FREQ4,
    MULTI,
    SCALE5,
    SINGLE,
    TEXT,
    YESNO,
    AnswerError,
    DefinitionError,
    check_compatible,
    dimension_scores,
    na_option,
    normalise,
    overall_score,
    parse_answers,
    validate,
)

from .conftest import answer_fields


def parse(definition, **answers):
    data = MultiDict(answer_fields(answers))
    return parse_answers(definition, data.get, data.getlist)


def item(code, item_type, text="题目", **extra):
    return {"code": code, "type": item_type, "text": text, **extra}


# Golden fixture -------------------------------------------------------------

GOLDEN_RAW = {
    "title": "评分金标准",
    "dimensions": [
        {"code": "A", "name": "甲", "weight": 2},
        {"code": "B", "name": "乙", "weight": 1},
        {"code": "C", "name": "丙", "weight": 1},
    ],
    "items": [
        item("A1", FREQ4, dimension="A"),
        item("A2", FREQ4, dimension="A", options=[na_option("NA", "不适用")]),
        item("A3", FREQ4, dimension="A"),
        item("A4", FREQ4, dimension="A"),
        item("B1", FREQ4, dimension="B", options=[na_option("NA", "我没按过呼叫铃")]),
        item("B2", FREQ4, dimension="B"),
        item("C1", SCALE5, dimension="C"),
        item("NOTE", TEXT),
    ],
}

# (answers, expected dimension scores, expected overall score)
GOLDEN_RESPONDENTS = [
    # Every FREQ4 option once in A: (100 + 66.67 + 33.33 + 0) / 4 = 50; B1 is N/A, so B = B2 alone.
    ({"A1": "4", "A2": "3", "A3": "2", "A4": "1", "B1": "NA", "B2": "3", "C1": "4"},
     {"A": 50.0, "B": 66.67, "C": 75.0}, 60.42),  # (2*50 + 66.67 + 75) / 4 = 60.4175
    # A2 is N/A: 2 of the 3 applicable A items answered -> kept, (100 + 0) / 2, not (100 + 0 + 0) / 3.
    # B: B1 N/A and B2 unanswered -> nothing to score, dropped. Overall (2*50 + 25) / 3.
    ({"A1": "4", "A2": "NA", "A4": "1", "B1": "NA", "C1": "2"}, {"A": 50.0, "C": 25.0}, 41.67),
    # A: 1 of 3 applicable items answered (A2 N/A) -> under half, dropped. B: 1 of 2 -> exactly half, kept.
    ({"A1": "4", "A2": "NA", "B2": "1", "C1": "5"}, {"B": 0.0, "C": 100.0}, 50.0),
    # A: 2 of 4 answered -> exactly half, kept: (66.67 + 33.33) / 2.
    ({"A1": "3", "A2": "2", "C1": "1"}, {"A": 50.0, "C": 0.0}, 33.33),  # (2*50 + 0) / 3
    # Only N/A and free text: no dimension, no score.
    ({"A2": "NA", "B1": "NA", "NOTE": "无"}, {}, None),
]


@pytest.fixture
def golden(ctx):
    definition = normalise(GOLDEN_RAW)
    validate(definition)
    return definition


def test_freq4_options_score_0_33_67_100(golden):
    answers = parse(golden, A1="1", A2="2", A3="3", A4="4")
    assert [a.score for a in answers] == pytest.approx([0.0, 33.33, 66.67, 100.0], abs=0.01)


@pytest.mark.parametrize("answers, expected_dimensions, expected_overall", GOLDEN_RESPONDENTS)
def test_golden_fixture_scores_to_a_hundredth(golden, answers, expected_dimensions, expected_overall):
    parsed = parse(golden, **answers)
    scores = dimension_scores(golden, parsed)
    assert set(scores) == set(expected_dimensions)
    for code, expected in expected_dimensions.items():
        assert scores[code] == pytest.approx(expected, abs=0.005), code
    if expected_overall is None:
        assert overall_score(golden, parsed) is None
    else:
        assert overall_score(golden, parsed) == pytest.approx(expected_overall, abs=0.005)


def test_dimension_index_over_the_golden_respondents(golden):
    """The dimension index is the mean over the respondents whose dimension is valid."""
    per_respondent = [dimension_scores(golden, parse(golden, **answers)) for answers, _, _ in GOLDEN_RESPONDENTS]
    index = {code: [s[code] for s in per_respondent if code in s] for code in ("A", "B", "C")}
    assert len(index["A"]) == 3 and sum(index["A"]) / 3 == pytest.approx(50.0, abs=0.01)
    assert len(index["B"]) == 2 and sum(index["B"]) / 2 == pytest.approx(33.34, abs=0.01)
    assert len(index["C"]) == 4 and sum(index["C"]) / 4 == pytest.approx(50.0, abs=0.01)


def test_not_applicable_is_stored_unscored_not_as_zero(golden):
    answers = {a.code: a for a in parse(golden, A1="4", A2="NA", A3="4")}
    assert answers["A2"].not_applicable is True
    assert answers["A2"].score is None
    assert dimension_scores(golden, list(answers.values()))["A"] == 100.0


def test_overall_item_is_the_score_when_answered(golden):
    raw = copy.deepcopy(GOLDEN_RAW)
    raw["items"].append(item("OVERALL", SCALE5, role="overall"))
    definition = normalise(raw)
    validate(definition)
    answered = parse(definition, A1="4", A2="4", A3="4", A4="4", B2="4", C1="5", OVERALL="2")
    assert overall_score(definition, answered) == 25.0
    # Unanswered overall item: the weighted mean of the dimensions instead.
    unanswered = parse(definition, A1="4", A2="4", A3="4", A4="4", B2="1", C1="5")
    assert overall_score(definition, unanswered) == pytest.approx((2 * 100 + 0 + 100) / 4, abs=0.005)


def test_shipped_inpatient_template_scores_by_its_overall_item(ctx):
    definition = normalise(builtin.INPATIENT)
    answers = parse(definition, IPD_NURSE_LISTEN="4", IPD_NURSE_EXPLAIN="2", IPD_CALL_HELP="NA",
                    IPD_CLEAN="1", IPD_QUIET="3", IPD_FOOD="NA", IPD_OVERALL="4")
    scores = dimension_scores(definition, answers)
    assert scores["NURSING"] == pytest.approx((100 + 33.33) / 2, abs=0.01)
    assert scores["ENVIRONMENT"] == pytest.approx((0 + 66.67) / 2, abs=0.01)
    assert "FOOD" not in scores  # its only item was answered N/A
    assert "DOCTORS" not in scores  # nothing answered
    assert overall_score(definition, answers) == 75.0


# normalise / validate --------------------------------------------------------

def test_standard_scales_keep_their_options_and_only_gain_na_answers(ctx):
    definition = normalise({"title": "t", "items": [item("Q1", FREQ4, options=[
        {"value": "4", "label": "总是", "score": 10}, na_option("NA", "我不知道")])]})
    options = definition["items"][0]["options"]
    assert [(o["value"], o["label"], o["score"], o["na"]) for o in options] == [
        ("1", "从未如此", 0.0, False), ("2", "有时如此", 33.33, False), ("3", "经常如此", 66.67, False),
        ("4", "总是如此", 100.0, False), ("NA", "我不知道", None, True)]


@pytest.mark.parametrize("items, fragment", [
    ([item("bad code", SCALE5)], "bad code"),
    ([item("Q1", SCALE5), item("Q1", YESNO)], "Q1"),
    ([item("Q1", "stars")], "Q1"),
    ([item("Q1", SCALE5, text="")], "Q1"),
    ([item("Q1", SCALE5, dimension="NOPE")], "NOPE"),
    ([item("Q1", SINGLE, options=[{"value": "a", "label": "甲"}])], "Q1"),
    ([item("Q1", SINGLE, options=[{"value": "a", "label": "甲"}, {"value": "a", "label": "乙"}])], "Q1"),
    ([item("Q1", MULTI, show_if={"item": "Q2", "max_score": 50}), item("Q2", SCALE5)], "Q1"),
    ([item("Q1", YESNO, dimension="D")], "Q1"),
])
def test_validate_refuses_broken_items_naming_the_code(ctx, items, fragment):
    definition = normalise({"title": "t", "dimensions": [{"code": "D", "name": "维度"}], "items": items})
    with pytest.raises(DefinitionError, match=fragment):
        validate(definition)


def test_validate_needs_a_title_and_an_item(ctx):
    with pytest.raises(DefinitionError):
        validate(normalise({"title": "", "items": [item("Q1", SCALE5)]}))
    with pytest.raises(DefinitionError):
        validate(normalise({"title": "t", "items": []}))


@pytest.mark.parametrize("raw", [builtin.WINDOW, builtin.OUTPATIENT, builtin.INPATIENT, builtin.STAFF])
def test_shipped_templates_are_valid(ctx, raw):
    validate(normalise(raw))


def test_window_template_needs_one_answer_and_offers_reason_chips(ctx):
    definition = normalise(builtin.WINDOW)
    required = [i["code"] for i in definition["items"] if i["required"]]
    assert required == ["WIN_OVERALL"]
    overall = definitions.item_by_code(definition, "WIN_OVERALL")
    assert overall["type"] == SCALE5 and overall["role"] == "overall"
    reasons = definitions.item_by_code(definition, "WIN_REASON")
    labels = [o["label"] for o in reasons["options"]]
    assert {"等候时间长", "态度不好", "流程不清"} <= set(labels)
    assert reasons["show_if"] == {"item": "WIN_OVERALL", "max_score": 50}


def test_inpatient_call_bell_and_pain_items_offer_not_applicable(ctx):
    definition = normalise(builtin.INPATIENT)
    for code in ("IPD_CALL_HELP", "IPD_PAIN"):
        options = definitions.item_by_code(definition, code)["options"]
        assert any(o["na"] and o["score"] is None for o in options), code


# check_compatible ------------------------------------------------------------

def _window(**changes):
    raw = copy.deepcopy(builtin.WINDOW)
    for entry in raw["items"]:
        entry.update(changes.get(entry["code"], {}))
    return normalise(raw)


def test_changing_an_item_codes_type_is_refused_naming_the_code(ctx):
    with pytest.raises(DefinitionError, match="WIN_OVERALL"):
        check_compatible([_window()], _window(WIN_OVERALL={"type": FREQ4}))


def test_changing_a_scored_scale_is_refused_naming_the_code(ctx):
    before = normalise({"title": "t", "items": [item("Q_EASE", SINGLE, options=[
        {"value": "1", "label": "难", "score": 0}, {"value": "2", "label": "易", "score": 100}])]})
    rescored = normalise({"title": "t", "items": [item("Q_EASE", SINGLE, options=[
        {"value": "1", "label": "难", "score": 0}, {"value": "2", "label": "易", "score": 80}])]})
    with pytest.raises(DefinitionError, match="Q_EASE"):
        check_compatible([before], rescored)


def test_label_changes_new_items_and_na_answers_are_compatible(ctx):
    reasons = copy.deepcopy(builtin.WINDOW["items"][1]["options"])
    reasons[0]["label"] = "排队太久"
    relabelled = _window(WIN_OVERALL={"text": "您对今天的窗口服务满意吗？"}, WIN_REASON={"options": reasons})
    relabelled["items"].append(normalise({"items": [item("WIN_NEW", YESNO)]})["items"][0])
    check_compatible([_window()], relabelled)
    freq = normalise({"title": "t", "items": [item("Q1", FREQ4)]})
    with_na = normalise({"title": "t", "items": [item("Q1", FREQ4, options=[na_option("NA", "不适用")])]})
    check_compatible([freq], with_na)


def test_a_code_is_checked_against_every_earlier_version(ctx):
    v1 = _window()
    v2 = normalise({"title": "t", "items": [item("OTHER", YESNO)]})  # WIN_OVERALL dropped in v2
    with pytest.raises(DefinitionError, match="WIN_OVERALL"):
        check_compatible([v1, v2], _window(WIN_OVERALL={"type": YESNO, "options": []}))


# parse_answers ---------------------------------------------------------------

def test_unknown_option_value_is_refused_with_the_item_code(ctx):
    definition = normalise(builtin.WINDOW)
    with pytest.raises(AnswerError) as raised:
        parse(definition, WIN_OVERALL="9")
    assert raised.value.code == "WIN_OVERALL"
    with pytest.raises(AnswerError) as raised:
        parse(definition, WIN_OVERALL="1", WIN_REASON=["R_WAIT", "R_BRIBE"])
    assert raised.value.code == "WIN_REASON"


def test_missing_required_answer_is_refused(ctx):
    with pytest.raises(AnswerError) as raised:
        parse(normalise(builtin.WINDOW), WIN_COMMENT="很好")
    assert raised.value.code == "WIN_OVERALL"


def test_reason_chips_are_kept_only_when_the_rating_is_low(ctx):
    definition = normalise(builtin.WINDOW)
    low = {a.code: a for a in parse(definition, WIN_OVERALL="2", WIN_REASON=["R_PROCESS", "R_WAIT"])}
    assert low["WIN_REASON"].value == ["R_WAIT", "R_PROCESS"]  # in the template's order
    assert low["WIN_REASON"].score is None
    high = {a.code: a for a in parse(definition, WIN_OVERALL="5", WIN_REASON=["R_WAIT"])}
    assert "WIN_REASON" not in high


def test_over_long_text_is_refused(ctx):
    definition = normalise(builtin.WINDOW)
    with pytest.raises(AnswerError) as raised:
        parse(definition, WIN_OVERALL="4", WIN_COMMENT="长" * 301)
    assert raised.value.code == "WIN_COMMENT"
    assert parse(definition, WIN_OVERALL="4", WIN_COMMENT="长" * 300)[-1].value == "长" * 300


def test_content_hash_ignores_key_order_but_not_content(ctx):
    definition = normalise(builtin.WINDOW)
    reordered = dict(reversed(list(definition.items())))
    assert definitions.content_hash(reordered) == definitions.content_hash(definition)
    changed = copy.deepcopy(definition)
    changed["items"][0]["text"] += "？"
    assert definitions.content_hash(changed) != definitions.content_hash(definition)
