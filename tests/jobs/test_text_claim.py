"""The paper's claim on text, on the shipped models and held-out documents: deleting the
words LRP marks most relevant lowers the explained score faster than deleting those of
sensitivity analysis, and than deleting random words (Arras et al. 2017). The README's
table comes from the same command with more steps and methods."""

import csv
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HELD_OUT = ROOT / "sample_texts" / "heldout" / "documents.txt"


def aopc(tmp_path, model, *options):
    out = tmp_path / model
    result = subprocess.run([sys.executable, "-m", "xai_cli", "evaluate", ROOT / "models" / model,
                             HELD_OUT, "--lines", *options, "-m", "lrp", "-m", "sa", "--steps", "5",
                             "-o", out], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    with open(out / "summary.csv", newline="") as f:
        rows = {row["method"]: row for row in csv.DictReader(f)}
    assert int(rows["lrp"]["n_images"]) == 399
    return {m: (float(r["aopc"]), float(r["aopc_stderr"])) for m, r in rows.items()}


def beyond(a, b, by=3):
    """``a`` above ``b`` by more than ``by`` combined standard errors."""
    return a[0] - b[0] > by * (a[1] ** 2 + b[1] ** 2) ** 0.5


def test_cnn_lrp_beats_sensitivity_beats_random(tmp_path):
    found = aopc(tmp_path, "text_cnn.keras", "--vocab", ROOT / "models" / "text_vocab.txt")
    assert beyond(found["lrp"], found["sa"]) and beyond(found["sa"], found["random"])


def test_lstm_lrp_beats_sensitivity_and_random(tmp_path):
    """On the LSTM, sensitivity analysis is no better than random: the README says so."""
    found = aopc(tmp_path, "text_lstm.keras")
    assert beyond(found["lrp"], found["sa"]) and beyond(found["lrp"], found["random"])
    assert not beyond(found["sa"], found["random"])
