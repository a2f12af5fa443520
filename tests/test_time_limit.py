"""Results that do not depend on the machine's speed: no shipped config stops by wall clock, and a run
that does stop by its time limit says that its result is not the config's."""

from __future__ import annotations

import json
import tomllib

from tests.conftest import ROOT, train_tiny


def test_no_shipped_config_stops_by_wall_clock():
    configs = sorted((ROOT / "experiments").glob("*.toml"))
    assert len(configs) >= 5
    for path in configs:
        train = tomllib.loads(path.read_text(encoding="utf-8")).get("train", {})
        assert not train.get("max_minutes"), f"{path.name} sets train.max_minutes"


def test_a_run_cut_by_its_time_limit_says_it_is_incomplete(capsys):
    run = train_tiny("transformer", "cut-by-time", epochs=4, extra=["train.max_minutes=1e-6"])
    out = capsys.readouterr().out
    summary = [json.loads(line)["summary"] for line in (run / "metrics.jsonl").read_text().splitlines()
               if "summary" in json.loads(line)][-1]
    assert summary["stopped"] == "time limit" and summary["complete"] is False
    assert summary["epochs"] == 1 and summary["planned_epochs"] == 4
    assert "1 of 4 epochs: the result is not the config's" in out


def test_a_run_that_trains_its_epochs_is_complete():
    run = train_tiny("transformer", "full-epochs", epochs=2)
    summary = [json.loads(line)["summary"] for line in (run / "metrics.jsonl").read_text().splitlines()
               if "summary" in json.loads(line)][-1]
    assert summary["stopped"] == "epochs" and summary["complete"] is True and summary["epochs"] == 2
