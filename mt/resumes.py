"""What `mt train --resume` may change, and the record of each change.

A run's config.toml stays as the run was started. A resume may change only how the run is carried out
(RESUMABLE: how long, threads, caches, logging, checkpointing), never the model, the data or how it learns;
each change is a line of config-changes.jsonl, {"epoch", "step", "key", "old", "new"}, in force from that
epoch (and optimiser step) on. The config a run trains under now is config.toml with those lines applied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mt import config as config_mod
from mt import files
from mt.config import Config
from mt.errors import MTError

CHANGES = "config-changes.jsonl"
# train.* settings that change how long and how a run is carried out, not what one epoch learns. Not train.seed:
# a resume restores the random state from the checkpoint, so a new seed would change nothing it says it does.
RESUMABLE = ("train.epochs", "train.threads", "train.max_minutes", "train.kernel_cache", "train.trim_memory_every",
             "train.tensorboard", "train.save_every_steps", "train.keep_epochs")
FLAG_NAMES = {"data.corpus": "--corpus", "data.limit": "--limit", "train.seed": "--seed", "train.epochs": "--epochs"}
WHY = {"train.seed": "a resume restores the run's random state from its checkpoint",
       "data": "a resumed run trains on the data it started with",
       "model": "the checkpoint holds a model of the run's own shape",
       "decode": "the run's checkpoints carry it (mt translate and mt evaluate take --beam and --alpha)"}


def read_changes(run: Path) -> list[dict]:
    """The run's recorded changes, oldest first ([] for a run never changed on resume)."""
    path = run / CHANGES
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def recorded_raw(run: Path) -> dict:
    """The run's config as a TOML dict: config.toml with the recorded changes applied in order."""
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in config_mod.read_toml(run / "config.toml").items()}
    for change in read_changes(run):
        section, name = change["key"].split(".", 1)
        raw.setdefault(section, {})[name] = change["new"]
    return raw


def resumed_config(run: Path, flags: dict[str, Any], sets: list[str]) -> Config:
    """The config a resume of `run` trains under: its recorded one changed by `flags` (section.key → value or
    None) and --set `sets`; a change outside RESUMABLE is refused with one line naming the key."""
    raw = recorded_raw(run)
    before = config_mod.build(raw)
    changed = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for key, value in flags.items():
        if value is not None:
            section, name = key.split(".", 1)
            changed.setdefault(section, {})[name] = value
    for text in sets:  # another family's config would fail on the first key the two do not share
        section, name, value = config_mod.parse_override(text)
        if f"{section}.{name}" == "model.type" and value != before.model_type:
            raise MTError(_refusal(run, "model.type", before.model_type, value, flags))
    after = config_mod.build(changed, sets)
    for key, old, new in differences(before, after):
        if key not in RESUMABLE:
            raise MTError(_refusal(run, key, old, new, flags))
    return after


def differences(before: Config, after: Config) -> list[tuple[str, Any, Any]]:
    """(section.key, old, new) for each setting that differs, in config order."""
    a, b = before.to_dict(), after.to_dict()
    return [(f"{section}.{name}", a[section].get(name), value)
            for section, values in b.items() for name, value in values.items()
            if a[section].get(name) != value]


def _refusal(run: Path, key: str, old: Any, new: Any, flags: dict[str, Any]) -> str:
    """One line: which flag would change which key, why it may not, what to do instead."""
    given = f"{FLAG_NAMES[key]} {new}" if flags.get(key) is not None else f"--set {key}={_show(new)}"
    why = WHY.get(key) or WHY.get(key.split(".")[0]) or "a resumed run keeps how it learns"
    return (f"--resume {run.name}: {given} would change {key} ({_show(old)} → {_show(new)}), and {why}; "
            f"a resume may change only train.{', '.join(k.split('.')[1] for k in RESUMABLE)}")


def record(run: Path, cfg: Config, epoch: int, step: int) -> list[dict]:
    """Append each difference between `cfg` and the run's recorded config to config-changes.jsonl, in force
    from `epoch` (after optimiser step `step`); returns the changes appended."""
    before = config_mod.build(recorded_raw(run))
    changes = [{"epoch": epoch, "step": step, "key": key, "old": _plain(old), "new": _plain(new)}
               for key, old, new in differences(before, cfg)]
    for change in changes:
        files.append_line(run / CHANGES, json.dumps(change))
    return changes


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _show(value: Any) -> str:
    return json.dumps(_plain(value), ensure_ascii=False)
