"""Benchmark: the product's sentiment model against snownlp on the same held-out rows, in one run.

Usage:  .venv/bin/python bench/sentiment.py --csv sentiment_train.csv [--batch 1000]

The held-out rows are the ones ``analytics/train_sentiment.py`` keeps out of training and
validation (same seed), so the product model has never seen them; snownlp's bundled model
was trained elsewhere. Each engine runs in a fresh interpreter, so its peak memory is its own.
Prints per engine: accuracy, macro-F1 (threshold 0.5), texts/s (scoring only, after loading),
load seconds and peak RSS growth (VmHWM at the end less VmRSS before loading), then the
product / snownlp ratios.
"""
from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # as a script: the app importable


def _vm(field: str) -> float:
    """A /proc/self/status memory figure, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_engine(engine: str, csv_path: Path, batch: int) -> dict[str, float]:
    from analytics.train_sentiment import read_csv, split

    texts, labels = read_csv(csv_path)
    _train, _val, held = split(labels)
    rows, truth = [texts[i] for i in held], labels[held]
    rss_before = _vm("VmRSS")
    started = time.perf_counter()
    if engine == "product":
        from analytics.sentiment import Model

        model = Model.load()
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        scores = [r.positive for i in range(0, len(rows), batch) for r in model.score(rows[i:i + batch])]
    else:
        from snownlp import SnowNLP  # the comparison baseline only

        assert 0 <= SnowNLP("预热").sentiments <= 1  # its model loads on first use
        loaded = time.perf_counter() - started
        started = time.perf_counter()
        scores = [SnowNLP(t).sentiments if t.strip() else 0.5 for t in rows]
    seconds = time.perf_counter() - started
    from sklearn.metrics import accuracy_score, f1_score

    predicted = [int(s >= 0.5) for s in scores]
    return {"rows": len(rows), "accuracy": float(accuracy_score(truth, predicted)),
            "macro_f1": float(f1_score(truth, predicted, average="macro")), "texts_per_s": len(rows) / seconds,
            "load_s": loaded, "peak_mb": _vm("VmHWM") - rss_before}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--engine", choices=("product", "snownlp"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        print(json.dumps(run_engine(args.engine, args.csv, args.batch)))
        return

    print(f"{platform.python_version()} on {platform.machine()}, csv {args.csv.name}")
    figures = {}
    for engine in ("product", "snownlp"):
        out = subprocess.run([sys.executable, __file__, "--engine", engine, "--csv", str(args.csv),
                              "--batch", str(args.batch)], capture_output=True, text=True, check=True)
        figures[engine] = json.loads(out.stdout.strip().splitlines()[-1])
        f = figures[engine]
        print(f"{engine:8} rows {f['rows']}  accuracy {f['accuracy']:.4f}  macro-F1 {f['macro_f1']:.4f}  "
              f"{f['texts_per_s']:,.0f} texts/s  load {f['load_s']:.2f} s  peak +{f['peak_mb']:.0f} MB")
    p, s = figures["product"], figures["snownlp"]
    print(f"ratio product/snownlp: accuracy {p['accuracy'] / s['accuracy']:.3f}, "
          f"macro-F1 {p['macro_f1'] / s['macro_f1']:.3f}, texts/s {p['texts_per_s'] / s['texts_per_s']:.1f}x")


if __name__ == "__main__":
    main()
