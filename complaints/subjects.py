"""A case's subject (事由) derived from what the complainant wrote, when nobody typed one.

Subjects are quoted in queues, reply letters, the ledger and the statistics, so they must read
as a phrase: the first sentence without the time it happened or a greeting, cut at a natural
break, never inside a number or right after a numeral, with "…" only when something was cut.
"""
from __future__ import annotations

import re

from complaints.categories import category_label
from complaints.models import Category

SUBJECT_LIMIT = 30  # characters: what a list, a reply letter and a report line can quote whole

# What a patient's first sentence opens with that a subject does not need: when it happened, a greeting.
# Each is stripped from the front in turn ("12月7日上午9点左右，…" → "…"); see derive_subject.
_DAY_PART = r"(?:凌晨|清晨|早上|早晨|上午|中午|下午|傍晚|晚上|夜间|夜里|半夜)"
_LEADING_TIME = [re.compile(p) for p in (
    r"^(?:您好|你好|领导好|领导您好)(?=[，,！!。：:\s])",
    # How an officer's note of a call or visit opens: "患者家属来电反映：…", "投诉人称…".
    r"^(?:(?:患者|病人|病患|投诉人|来电人|来访人|市民|群众)(?:本人|家属|的家属)?|家属)"
    r"(?:(?:来电|来访|来信|致电|电话|到院|现场)?(?:反映|反应|投诉|称|表示|诉说|诉)(?=\S)|(?:来电|来访|来信)(?=[，,：:]))",
    r"^(?:\d{2,4}\s*年\s*)?\d{1,2}\s*月\s*\d{1,2}\s*[日号](?:左右)?",
    r"^\d{4}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{1,2}",
    # "7号" alone is also a window's number: a day only when a time of day follows.
    r"^\d{1,2}\s*[日号](?=\s*(?:" + _DAY_PART + r"|\d))",
    r"^(?:今天|昨天|前天|今日|昨日|当天|当日|上周|本周|这周)",
    r"^(?:上|本|这)?(?:周|星期|礼拜)[一二三四五六日天]",
    r"^" + _DAY_PART,
    r"^\d{1,2}\s*[:：]\s*\d{2}(?:左右)?",
    r"^\d{1,2}\s*[点时](?:\s*\d{1,2}\s*分|半|多|整)?(?:左右)?",
)]
# A Chinese-numeral hour ("九点半") only right after a time of day: "一点都不…" is not a time.
_HOUR_IN_WORDS = re.compile(r"^[一二三四五六七八九十两]{1,3}\s*点"
                            r"(?:半|多|整|\s*[一二三四五六七八九十]{1,3}\s*分)?(?:左右)?")
_AFTER_TIME = re.compile(r"^[\s，,、:：!！。]+")
_SENTENCE_END = re.compile(r"[。！？!?；;\n]|……|\.\.\.")
_CLAUSE_BREAK = re.compile(r"[，,、：:]")
# Never cut inside a number or a Latin word, nor right after a numeral ("只开一|个").
_UNBREAKABLE = re.compile(r"[0-9A-Za-z.%％０-９]")
_NUMERAL = re.compile(r"[0-9０-９一二三四五六七八九十百千万两几半]")


def _strip_leading_time(text: str) -> str:
    """The text without the date, time of day or greeting it opens with (all of them, in any order)."""
    after_day_part = False
    while True:
        for pattern in _LEADING_TIME + ([_HOUR_IN_WORDS] if after_day_part else []):
            match = pattern.match(text)
            if match and match.end():
                after_day_part = bool(re.fullmatch(_DAY_PART, match.group(0)))
                text = _AFTER_TIME.sub("", text[match.end():], count=1)
                break
        else:
            return text


def _cut(text: str, limit: int) -> str:
    """``text`` shortened to at most ``limit`` characters, not inside a number or a word, ending in "…"."""
    cut = limit - 1
    while cut > 0 and (_NUMERAL.match(text[cut - 1])
                       or (_UNBREAKABLE.match(text[cut - 1]) and _UNBREAKABLE.match(text[cut]))):
        cut -= 1
    head = text[:cut] if cut > limit // 3 else text[:limit - 1]
    return head.rstrip("，,、：:；; ") + "…"


def derive_subject(description: str, category: Category | None = None, *, limit: int = SUBJECT_LIMIT) -> str:
    """A readable subject from the complaint's text, for a form that did not ask for one (or left it empty).

    The first sentence, without the date, time or greeting it opens with; if that is longer than
    ``limit`` characters, its first clauses up to a natural break (，、：), else a cut that does not
    split a number or a word; "…" only when shortened. Without any text: the category's name.
    """
    text = " ".join((description or "").split("\n", 1)[0].split())
    stripped = _strip_leading_time(text)
    text = stripped if stripped.strip("，,、：:。！？!?；; ") else text
    sentence = _SENTENCE_END.split(text, maxsplit=1)[0].strip().rstrip("，,、：:")
    if not sentence:
        return category_label(category)
    if len(sentence) <= limit:
        return sentence
    head, end = "", 0
    for match in _CLAUSE_BREAK.finditer(sentence):
        if match.start() > limit - 1:
            break
        head, end = sentence[:match.start()], match.start()
    if end >= 8:
        return head + "…"
    return _cut(sentence, limit)
