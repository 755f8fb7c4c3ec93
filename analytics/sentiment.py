"""Sentiment of what patients write: ``score(texts)`` returns one ``Result`` per text, in order.

The model is a linear model over character n-grams (and, when its metadata says so, jieba
word n-grams), trained by ``analytics/train_sentiment.py`` and shipped as plain arrays
(``models/sentiment.npz``) plus a JSON vocabulary and metadata (``models/sentiment.json``):
nothing in the files is executed on load. It is loaded once per process, on first use.

``positive`` is the calibrated probability that the text is positive (0.5 is the decision
point); ``band`` is negative / mixed / positive by the thresholds chosen on validation data
and stored in the metadata. Texts with nothing to judge (empty, whitespace, no Chinese
character: emoji, digits, foreign text) get 0.5, the band ``mixed`` and a flag saying why.
Very long texts are scored by chunks of whole sentences and the chunks' log-odds averaged,
weighted by length, so nothing is silently dropped.
"""
from __future__ import annotations

import json
import math
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MODEL_DIR = Path(__file__).resolve().parent / "models"
MODEL_NAME = "sentiment"

NEGATIVE, MIXED, POSITIVE = "negative", "mixed", "positive"
# Flags a result may carry: why it was not (or not simply) scored.
EMPTY, NO_CHINESE, NO_SIGNAL, LONG = "empty", "no_chinese", "no_signal", "long_text_chunked"

# A text longer than this is scored chunk by chunk; each chunk is whole sentences up to CHUNK_CHARS.
LONG_CHARS = 2000
CHUNK_CHARS = 400

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SPACE = re.compile(r"\s+")
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;…\n])")


@dataclass(frozen=True, slots=True)
class Result:
    positive: float
    band: str
    model_version: str
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Features:
    """How a text becomes n-grams; the trainer and the scorer share it, so they cannot drift apart."""

    char_ngrams: tuple[int, int] = (1, 3)
    word_ngrams: tuple[int, int] | None = None  # jieba words, e.g. (1, 2); None: characters only
    turn_markers: tuple[str, ...] = ()  # 转折 words: the clause after the last one weighs more
    turn_weight: float = 1.0

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> Features:
        words = meta.get("word_ngrams")
        low, high = meta["char_ngrams"]
        return cls(char_ngrams=(int(low), int(high)),
                   word_ngrams=(int(words[0]), int(words[1])) if words else None,
                   turn_markers=tuple(meta.get("turn_markers", ())),
                   turn_weight=float(meta.get("turn_weight", 1.0)))

    def to_meta(self) -> dict[str, Any]:
        return {"char_ngrams": list(self.char_ngrams),
                "word_ngrams": list(self.word_ngrams) if self.word_ngrams else None,
                "turn_markers": list(self.turn_markers), "turn_weight": self.turn_weight}

    def grams(self, text: str) -> Mapping[str, float]:
        """The n-gram counts of one normalised text; n-grams after the last 转折 word count turn_weight each."""
        head, tail = text, ""
        if self.turn_markers and self.turn_weight != 1.0:
            cut = max((text.rfind(m) for m in self.turn_markers), default=-1)
            if cut > 0:
                head, tail = text[:cut], text[cut:]
        counts = self._grams(head)
        if not tail:
            return counts
        weighted: dict[str, float] = dict(counts)
        for gram, n in self._grams(tail).items():
            weighted[gram] = weighted.get(gram, 0) + n * self.turn_weight
        return weighted

    def _grams(self, text: str) -> Counter[str]:
        low, high = self.char_ngrams
        size = len(text)
        counts = Counter(text[i:i + n] for n in range(low, high + 1) for i in range(size - n + 1))
        if self.word_ngrams:
            words = [w for w in _jieba().lcut(text) if not w.isspace()]
            low, high = self.word_ngrams
            counts.update("\x01" + "\x02".join(words[i:i + n])
                          for n in range(low, high + 1) for i in range(len(words) - n + 1))
        return counts


_jieba_module: Any = None


def _jieba() -> Any:
    global _jieba_module
    if _jieba_module is None:
        import logging

        import jieba  # only a model that uses word n-grams needs it

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba_module = jieba
    return _jieba_module


def normalise(text: str) -> str:
    """Full-width to half-width, lower case, runs of whitespace to one space."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().lower()


def sentence_chunks(text: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Whole sentences grouped into chunks of at most ``limit`` characters (a longer sentence is cut in pieces)."""
    chunks: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > limit:
            chunks.append(sentence[:limit])
            sentence = sentence[limit:]
        if len(current) + len(sentence) > limit and current:
            chunks.append(current)
            current = ""
        current += sentence
    if current.strip():
        chunks.append(current)
    return chunks


def transform_tf(counts: np.ndarray, tf: str) -> np.ndarray:
    if tf == "sublinear":
        return 1.0 + np.log(counts)
    if tf == "binary":
        return np.minimum(counts, 1.0)
    return counts


class Model:
    """A loaded linear model: ``logit = (x · coef) / ‖x‖ + intercept`` over scaled n-gram counts, then Platt."""

    def __init__(self, meta: dict[str, Any], vocabulary: Sequence[str], scale: np.ndarray, coef: np.ndarray):
        self.meta = meta
        self.version: str = meta["version"]
        self.features = Features.from_meta(meta["features"])
        self.index = {gram: i for i, gram in enumerate(vocabulary)}
        self.scale = scale.astype(np.float64)
        self.weight = self.scale * coef.astype(np.float64)
        self.intercept = float(meta["intercept"])
        self.tf: str = meta["tf"]  # raw counts, 1 + log(count) ("sublinear") or presence ("binary")
        self.l2 = bool(meta["l2_normalise"])
        self.platt_a, self.platt_b = (float(v) for v in meta["calibration"]["platt"])
        self.negative_below, self.positive_above = (float(v) for v in meta["bands"]["thresholds"])

    @classmethod
    def load(cls, directory: Path = MODEL_DIR, name: str = MODEL_NAME) -> Model:
        meta = json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
        with np.load(directory / f"{name}.npz", allow_pickle=False) as arrays:
            scale, coef = arrays["scale"], arrays["coef"]
        return cls(meta, meta.pop("vocabulary"), scale, coef)

    def raw_logits(self, texts: Sequence[str]) -> np.ndarray:
        """The uncalibrated log-odds of normalised texts, one batch of sparse rows at once."""
        index = self.index
        columns: list[int] = []
        values: list[float] = []
        starts = np.zeros(len(texts) + 1, dtype=np.int64)
        for row, text in enumerate(texts):
            for gram, count in self.features.grams(text).items():
                column = index.get(gram)
                if column is not None:
                    columns.append(column)
                    values.append(count)
            starts[row + 1] = len(columns)
        if not columns:
            return np.full(len(texts), np.nan)
        cols = np.asarray(columns, dtype=np.int64)
        x = np.asarray(values, dtype=np.float64)
        x = transform_tf(x, self.tf)
        lengths = np.diff(starts)
        row_of = np.repeat(np.arange(len(texts)), lengths)
        dot = np.bincount(row_of, weights=x * self.weight[cols], minlength=len(texts))
        if self.l2:
            norm = np.sqrt(np.bincount(row_of, weights=(x * self.scale[cols]) ** 2, minlength=len(texts)))
        else:
            norm = np.ones(len(texts))
        with np.errstate(invalid="ignore", divide="ignore"):
            logits = np.where(lengths > 0, dot / norm + self.intercept, np.nan)
        return logits

    def calibrate(self, logits: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.platt_a * logits + self.platt_b)))

    def band(self, positive: float) -> str:
        if positive < self.negative_below:
            return NEGATIVE
        if positive > self.positive_above:
            return POSITIVE
        return MIXED

    def score(self, texts: Iterable[str | None]) -> list[Result]:
        texts = list(texts)
        results: list[Result | None] = [None] * len(texts)
        rows: list[str] = []  # what is scored, one row per short text or per chunk of a long one
        owners: list[int] = []
        for i, raw in enumerate(texts):
            text = normalise(raw or "")
            if not text:
                results[i] = Result(0.5, MIXED, self.version, (EMPTY,))
            elif not _CJK.search(text):
                results[i] = Result(0.5, MIXED, self.version, (NO_CHINESE,))
            elif len(text) > LONG_CHARS:
                for chunk in sentence_chunks(text):
                    rows.append(chunk)
                    owners.append(i)
            else:
                rows.append(text)
                owners.append(i)
        logits = self.raw_logits(rows) if rows else np.zeros(0)
        calibrated = self.platt_a * logits + self.platt_b
        by_owner: dict[int, list[tuple[float, int]]] = {}
        for row, owner in enumerate(owners):
            by_owner.setdefault(owner, []).append((float(calibrated[row]), len(rows[row])))
        for owner, parts in by_owner.items():
            known = [(z, size) for z, size in parts if not math.isnan(z)]
            flags = (LONG,) if len(parts) > 1 else ()
            if not known:
                results[owner] = Result(0.5, MIXED, self.version, flags + (NO_SIGNAL,))
                continue
            z = sum(z * size for z, size in known) / sum(size for _z, size in known)
            positive = 1.0 / (1.0 + math.exp(-z))
            results[owner] = Result(positive, self.band(positive), self.version, flags)
        return [r for r in results if r is not None]


_model: Model | None = None
_lock = threading.Lock()


def model() -> Model:
    """The shipped model, loaded once per process."""
    global _model
    if _model is None:
        with _lock:
            if _model is None:
                _model = Model.load()
    return _model


def score(texts: Iterable[str | None]) -> list[Result]:
    """One Result per text, in the order given: calibrated P(positive), band and model version."""
    return model().score(texts)
