"""Result CSV schema, upsert semantics, and the markdown summary beside the paper's figures."""
import math

import pandas as pd
import pytest

from endolib import reporting as R


def _row(**kw):
    base = {"task": "classification", "dataset": "polypdiag", "metric": "F1", "value": 0.8731,
            "baseline_value": 0.5, "checkpoint": "scratch", "seed": 0, "split": "test", "notes": "synthetic"}
    base.update(kw)
    return base


def test_write_round_trip_schema_and_aliases(tmp_path):
    path = R.write_result_rows([_row(), {"task": "classification", "dataset": "polypdiag", "metric": "auroc",
                                          "value": 0.91, "baseline": 0.5, "mode": "linear"}],
                               tmp_path / "classification.csv")
    df = pd.read_csv(path)
    assert list(df.columns[:len(R.RESULT_COLUMNS)]) == list(R.RESULT_COLUMNS)
    assert "mode" in df.columns                       # extra columns kept after the schema
    assert df["metric"].tolist() == ["f1", "auroc"]  # lower-cased
    assert df.loc[1, "baseline_value"] == 0.5        # 'baseline' alias
    assert math.isnan(df.loc[0, "mode"]) and df.loc[1, "mode"] == "linear"


def test_rewrite_replaces_same_key_keeps_others(tmp_path):
    path = tmp_path / "seg.csv"
    R.write_result_rows([_row(task="segmentation", dataset="cvc12k", metric="dice", value=0.5, seed=0),
                         _row(task="segmentation", dataset="cvc12k", metric="dice", value=0.6, seed=1)], path)
    R.write_result_rows([_row(task="segmentation", dataset="cvc12k", metric="dice", value=0.7, seed=0)], path)
    df = pd.read_csv(path)
    assert df["value"].tolist() == [0.7, 0.6] and df["seed"].tolist() == [0, 1]  # replaced where it stood
    R.write_result_rows([_row(task="segmentation", dataset="cvc12k", metric="iou", value=0.4, seed=0),
                         _row(task="segmentation", dataset="cvc12k", metric="dice", value=0.8, seed=1)], path)
    df = pd.read_csv(path)
    assert list(zip(df["metric"], df["seed"], df["value"])) == [("dice", 0, 0.7), ("dice", 1, 0.8), ("iou", 0, 0.4)]


def test_bare_task_name_goes_to_outputs_results(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "OUTPUTS", tmp_path)
    path = R.write_result_rows([_row()], "classification")
    assert path == tmp_path / "results" / "classification.csv" and path.is_file()


def test_missing_columns_and_empty_rows_raise(tmp_path):
    with pytest.raises(ValueError, match=r"lack column\(s\) \['value'\]"):
        R.write_result_rows([{"task": "a", "dataset": "b", "metric": "c"}], tmp_path / "x.csv")
    with pytest.raises(ValueError, match="no rows"):
        R.write_result_rows([], tmp_path / "x.csv")


def test_build_summary_labels_and_paper_figures(tmp_path):
    R.write_result_rows([_row()], tmp_path / "classification.csv")
    R.write_result_rows([_row(task="phase", dataset="autolaparo", metric="accuracy", value=0.4, data="real")],
                        tmp_path / "phase.csv")
    out = R.build_summary(tmp_path)
    text = out.read_text()
    assert out == tmp_path / "summary.md"
    assert "ours, synthetic data" in text and "ours, real data" in text and "paper, real data" in text
    line = next(x for x in text.splitlines() if x.startswith("| classification | polypdiag | f1 |"))
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert cells[3:7] == ["87.3", "50.0", "not found", "96.0"]   # ours, baseline, paper, README
    assert "| localization | — | — | not found |" in text
    for r in R.PAPER_RESULTS:                                       # every paper figure cites a source
        assert r["paper"] is None or isinstance(r["paper"], float)


def test_build_summary_without_results(tmp_path):
    text = R.build_summary(tmp_path, tmp_path / "s.md").read_text()
    assert "No result tables found" in text and "not found" in text


def test_summary_reads_tables_written_without_the_optional_columns(tmp_path):
    pd.DataFrame([{"task": "action", "dataset": "surgicalactions160", "metric": "top1", "value": 0.3,
                   "baseline": 0.1}]).to_csv(tmp_path / "action.csv", index=False)
    df = R.read_results(tmp_path)
    assert df.loc[0, "baseline_value"] == 0.1 and "split" in df
    assert "| action | surgicalactions160 | top1 | 30.0 | 10.0 |" in R.build_summary(tmp_path).read_text()
