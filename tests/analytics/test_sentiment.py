"""The shipped sentiment model: its targets (issue 12), the hand-made hospital set, edge cases, limits."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from analytics import sentiment
from analytics.sentiment import EMPTY, LONG, MIXED, NEGATIVE, NO_CHINESE, POSITIVE, Model, Result, score

ROOT = Path(__file__).resolve().parents[2]
HOSPITAL_SET = Path(__file__).resolve().parent / "hospital_sentiment.csv"
# The training pool is not in the repository: next to the checkout (the shared data folder), or where
# TINGJIAN_SENTIMENT_CSV says.
POOL = Path(os.environ.get("TINGJIAN_SENTIMENT_CSV", ROOT.parent / "shared" / "data" / "sentiment_train.csv"))

TARGET = 0.92  # held-out accuracy and macro-F1 (issue 12, point 2)


def hospital_rows() -> list[dict[str, str]]:
    with HOSPITAL_SET.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def share(rows: list[dict[str, str]], kind: str, band_positive: bool) -> tuple[float, int]:
    chosen = [r for r in rows if r["kind"] == kind]
    results = score([r["text"] for r in chosen])
    hits = sum((res.positive >= 0.5) == band_positive for res in results)
    return hits / len(chosen), len(chosen)


def test_the_hospital_set_is_big_enough_and_has_both_polarities():
    rows = hospital_rows()
    assert len(rows) >= 200
    assert {r["label"] for r in rows} == {"0", "1"}
    assert {r["kind"] for r in rows} == {"complaint", "thanks", "mixed", "negation"}


def test_at_least_90_percent_of_hospital_complaints_are_negative():
    rate, n = share(hospital_rows(), "complaint", band_positive=False)
    assert rate >= 0.90, f"{rate:.3f} of {n} complaints scored negative"


@pytest.mark.xfail(strict=True, reason="issue 12 target not met yet: 67 of 70 thank-you letters positive (0.957)")
def test_at_least_97_percent_of_thank_you_letters_are_positive():
    rate, n = share(hospital_rows(), "thanks", band_positive=True)
    assert rate >= 0.97, f"{rate:.3f} of {n} thank-you letters scored positive"


def test_the_hospital_set_as_a_whole_is_mostly_right():
    """A floor under the whole set (mixed and negated sentences included), so a regression shows."""
    rows = hospital_rows()
    results = score([r["text"] for r in rows])
    right = sum((res.positive >= 0.5) == (r["label"] == "1") for res, r in zip(results, rows, strict=True))
    assert right / len(rows) >= 0.88


@pytest.mark.xfail(strict=True, reason="issue 12 target not met yet: held-out accuracy 0.9085, macro-F1 0.9085")
def test_held_out_accuracy_and_macro_f1_meet_the_target():
    held_out = sentiment.model().meta["metrics"]["held_out"]
    assert held_out["accuracy"] >= TARGET and held_out["macro_f1"] >= TARGET, held_out


def test_held_out_figures_beat_both_baselines_of_the_data_readme():
    """snownlp's bundled model about 0.78, a character n-gram TF-IDF + LR about 0.90."""
    held_out = sentiment.model().meta["metrics"]["held_out"]
    assert held_out["accuracy"] >= 0.90 and held_out["macro_f1"] >= 0.90, held_out


def test_the_metadata_figures_are_what_the_shipped_model_scores_on_the_held_out_rows():
    if not POOL.exists():
        pytest.skip(f"the training pool is not here ({POOL.name}); set TINGJIAN_SENTIMENT_CSV")
    from analytics.train_sentiment import read_csv, split

    meta = sentiment.model().meta
    texts, labels = read_csv(POOL)
    _train, _val, held = split(labels)
    results = score([texts[i] for i in held])
    predicted = np.array([r.positive >= 0.5 for r in results])
    truth = labels[held] == 1
    accuracy = float((predicted == truth).mean())
    assert accuracy == pytest.approx(meta["metrics"]["held_out"]["accuracy"], abs=0.002)


def test_calibrated_bands_surround_the_decision_point():
    low, high = sentiment.model().meta["bands"]["thresholds"]
    assert 0 < low <= 0.5 <= high < 1
    results = score(["医生态度恶劣，乱收费，要求赔偿。", "感谢医生护士的精心照顾！"])
    assert [r.band for r in results] == [NEGATIVE, POSITIVE]


@pytest.mark.parametrize("text, flag", [("", EMPTY), ("   \n\t ", EMPTY), (None, EMPTY),
                                        ("😀😀👍🙏", NO_CHINESE), ("12345 !!!", NO_CHINESE),
                                        ("The doctor was very kind", NO_CHINESE)])
def test_texts_with_nothing_to_judge_are_mixed_and_flagged(text, flag):
    [result] = score([text])
    assert result == Result(0.5, MIXED, sentiment.model().version, (flag,))


def test_a_very_long_text_is_scored_by_sentence_not_truncated():
    complaint = "排队三个小时没人管，护士态度恶劣，乱收费，要求医院给个说法。"
    thanks = "感谢医生护士的精心治疗和照顾，我们全家非常感激。"
    # The last third changes the verdict: a truncating scorer would not see it.
    long_text = complaint * 400 + thanks * 1200
    assert len(long_text) > 20_000
    [result] = score([long_text])
    assert LONG in result.flags
    assert result.positive > 0.5
    [result] = score([complaint * 1000])
    assert result.positive < 0.5 and LONG in result.flags


def test_results_come_back_in_the_order_given_one_per_text():
    texts = [r["text"] for r in hospital_rows()][:50] + ["", "👍"]
    batch = score(texts)
    assert len(batch) == len(texts)
    assert batch == [score([t])[0] for t in texts]


def test_the_model_files_are_small_plain_arrays_and_json():
    files = [sentiment.MODEL_DIR / "sentiment.npz", sentiment.MODEL_DIR / "sentiment.json"]
    assert sum(f.stat().st_size for f in files) < 30 * 1024 * 1024
    with np.load(files[0], allow_pickle=False) as arrays:
        assert all(arrays[name].dtype.kind == "f" for name in arrays.files)
    meta = json.loads(files[1].read_text(encoding="utf-8"))
    assert meta["version"] and meta["date"] and meta["training_data"]["sha256"]


def test_the_model_loads_in_under_a_second_and_adds_under_200_mb():
    program = ("import resource, time\n"
               "from analytics.sentiment import Model\n"
               "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
               "t = time.perf_counter(); Model.load(); t = time.perf_counter() - t\n"
               "print(t, (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n")
    out = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, check=True)
    seconds, megabytes = (float(v) for v in out.stdout.split())
    assert seconds < 1.0, f"loaded in {seconds:.2f} s"
    assert megabytes < 200, f"added {megabytes:.0f} MB"


def test_scoring_runs_at_2000_texts_a_second_on_one_core():
    texts = [r["text"] for r in hospital_rows()] * 20
    model: Model = sentiment.model()
    best = min(_timed(model, texts) for _ in range(3))
    assert len(texts) / best >= 2000, f"{len(texts) / best:.0f} texts/s"


def _timed(model: Model, texts: list[str]) -> float:
    started = time.perf_counter()
    model.score(texts)
    return time.perf_counter() - started
