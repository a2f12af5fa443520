"""Run folders, metrics.jsonl, and the `mt compare` table.

experiments/runs/<name>/
    config.toml  vocab.json  [src|tgt].sp.model  metrics.jsonl  train.log
    [config-changes.jsonl]  (settings changed on resume, each from its epoch: mt/resumes.py)
    last.safetensors  best.safetensors  epoch-<n>.safetensors  [averaged.safetensors]
    eval-<split>.json  hyps-<split>.txt
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from mt import files
from mt.errors import MTError

LOCK = ".lock"  # held (flock) by the process training the run; the kernel drops it when that process dies


@contextmanager
def claim_run(run: Path, resume: bool) -> Iterator[None]:
    """Hold run folder `run` for one training, from before its first file until the block ends.

    A new run's folder is created exclusively (of two starts with one name, exactly one creates it),
    then locked; a resumed run is locked. A start that fails before its first checkpoint removes the
    folder it created, so the retry with the same --name is not refused. After a kill -9 the lock is
    gone with the process, so `--resume` works."""
    if not resume:
        with files.writing(run):
            run.parent.mkdir(parents=True, exist_ok=True)
        try:
            run.mkdir()
        except FileExistsError:
            raise MTError(f"run {run} already exists: pick another --name, or --resume {run.name}") from None
        except OSError as e:
            raise MTError(f"cannot create {run}: {files.cause(e)}") from None
    with files.writing(run / LOCK):
        fd = os.open(run / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            raise MTError(f"run {run} is being trained by another process{f' (pid {holder})' if holder else ''}: "
                          f"wait for it to finish, or pick another --name") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    except BaseException:
        if not resume and not (run / "last.safetensors").exists():
            shutil.rmtree(run, ignore_errors=True)  # nothing to resume: a failed start leaves no folder
        raise
    finally:
        os.close(fd)  # releases the lock; the file stays (unlinking it would race with a new claimant)


def runs_root() -> Path:
    return Path(os.environ.get("MT_RUNS_DIR", "experiments/runs"))


def all_runs() -> list[Path]:
    root = runs_root()
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if (p / "config.toml").exists()),
                  key=lambda p: p.stat().st_mtime)


def find_run(name: str | None) -> Path:
    """A run by name or path; None → the most recently trained run."""
    if name is None:
        runs = [r for r in all_runs() if (r / "best.safetensors").exists()]
        if not runs:
            raise MTError(f"no trained run found in {runs_root()} (train one with `mt train`)")
        return max(runs, key=lambda r: (r / "best.safetensors").stat().st_mtime)
    for candidate in (Path(name), runs_root() / name):
        if (candidate / "config.toml").exists():
            return candidate
    raise MTError(f"run not found: {name} (looked in {runs_root()})")


def best_checkpoint(run: Path) -> Path:
    """averaged beats best when it was kept for a higher dev BLEU; else best, else last."""
    for name in ("final", "best", "last"):
        path = run / f"{name}.safetensors"
        if path.exists():
            return path
    raise MTError(f"run {run} has no checkpoint yet")


def resolve_checkpoints(runs: list[str] | None, checkpoints: list[str] | None) -> list[Path]:
    """--run/--checkpoint given once or more (an ensemble): their checkpoints, in order; none → the latest run."""
    paths = [best_checkpoint(find_run(r)) for r in runs or []] + [resolve_checkpoint(None, c) for c in checkpoints or []]
    return paths or [best_checkpoint(find_run(None))]


def resolve_checkpoint(run: str | list[str] | None, checkpoint: str | list[str] | None) -> Path:
    """One model's checkpoint; a repeated --run or --checkpoint is an error here, never "the last one"."""
    run, checkpoint = _one(run, "--run"), _one(checkpoint, "--checkpoint")
    if run and checkpoint:
        raise MTError("--run and --checkpoint name two models; this command takes one")
    if checkpoint:
        path = Path(checkpoint)
        if not path.exists():
            raise MTError(f"checkpoint not found: {checkpoint}")
        return path
    return best_checkpoint(find_run(run))


def _one(value: str | list[str] | None, flag: str) -> str | None:
    if isinstance(value, list):
        if len(value) > 1:
            raise MTError(f"{flag} given {len(value)} times; this command takes one model (ensembles: mt translate, mt evaluate)")
        return value[0]
    return value


def append_metrics(run: Path, record: dict) -> None:
    files.append_line(run / "metrics.jsonl", json.dumps(record))


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a full disk or a kill: not a record
            continue
    return records


def keep_metrics_through(run: Path, epoch: int) -> int:
    """On resume: drop the records of epochs after the checkpoint's (`epoch`), which are redone; returns how many.

    An epoch is recorded before `last` is saved, so a write that failed in between (no space left) leaves a
    record that no checkpoint holds. Summary records of earlier finished runs are kept."""
    records = read_metrics(run)
    kept = [r for r in records if r.get("epoch", 0) <= epoch]
    if (run / "metrics.jsonl").exists():  # rewritten whole: a line cut short goes too
        files.write_text(run / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in kept))
    return len(records) - len(kept)


def summarize(run: Path) -> dict:
    """One row of `mt compare`."""
    records = [r for r in read_metrics(run) if "epoch" in r]
    info = json.loads((run / "info.json").read_text()) if (run / "info.json").exists() else {}
    ensemble = (run / "ensemble.json").exists()  # written by `mt evaluate --run A --run B`
    if ensemble:
        members = [Path(m).parent for m in json.loads((run / "ensemble.json").read_text())["members"]]
        infos = [m / "info.json" if (m / "info.json").exists() else run.parent / m.name / "info.json" for m in members]
        params = [json.loads(i.read_text()).get("params") if i.exists() else None for i in infos]
        info = {"model": f"ensemble of {len(members)}", "params": None if None in params else sum(params)}
    row = {
        "run": run.name, "model": info.get("model", "?"), "params": info.get("params"),
        "epochs": None if ensemble else records[-1]["epoch"] if records else 0,
        "best_dev_bleu": max((r["dev_bleu"] for r in records), default=None),
        "minutes": round(sum(r["seconds"] for r in records) / 60, 1) if records else None,
        "tok_per_s": round(sum(r["tgt_tokens_per_s"] for r in records) / len(records)) if records else None,
    }
    for split in ("test",):
        path = run / f"eval-{split}.json"
        if path.exists():
            ev = json.loads(path.read_text())
            row.update({f"{split}_bleu": ev.get("bleu_tok"), f"{split}_bleu_ja": ev.get("bleu_ja"),
                        f"{split}_chrf": ev.get("chrf")})
    return row


def runs_table(runs: list[Path]) -> list[list[str]]:
    """The runs' training figures (the first rows of `mt compare`): header row, then one row per run."""
    cols = ["run", "model", "params", "epochs", "best_dev_bleu", "minutes", "tok_per_s"]
    heads = ["run", "model", "params", "epochs", "dev BLEU", "minutes", "tgt tok/s"]

    def fmt(v) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.2f}"
        if isinstance(v, int) and v > 99_999:
            return f"{v / 1e6:.2f}M"
        return str(v)

    return [heads] + [[fmt(summarize(r).get(c)) for c in cols] for r in runs]


X_AXES = {"epochs": ("epoch", "epoch"), "updates": ("step", "updates"), "minutes": ("minutes", "training minutes")}


def plot_runs(runs: list[Path], out: Path, x: str = "epochs", force: bool = False,
              warn: Callable[[str], None] = print) -> Path:
    """Dev BLEU and losses of several runs side by side, against epochs, updates or training minutes.

    Refuses (force: warns) to draw on one axis dev BLEU of different dev sets or BLEU signatures."""
    _check_plottable(runs, force, warn)
    return _draw(runs, out, x)


def _check_plottable(runs: list[Path], force: bool, warn: Callable[[str], None]) -> None:
    infos = [(r, json.loads((r / "info.json").read_text())) for r in runs if (r / "info.json").exists()]
    for run, info in infos[1:]:
        base, first = infos[0]
        for what, key in (("corpora", "corpus"), ("dev BLEU signatures", "bleu_signature")):
            if info.get(key) != first.get(key):
                msg = (f"not comparable on one axis: {base.name} and {run.name} have different {what} "
                       f"({first.get(key)} vs {info.get(key)}) (--force plots anyway)")
                if not force:
                    raise MTError(msg)
                warn(msg)


def _draw(runs: list[Path], out: Path, x: str) -> Path:
    import matplotlib  # lazy: an optional extra (mt-enja[plot]), slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key, label = X_AXES[x]
    fig, (ax_bleu, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        records = [r for r in read_metrics(run) if "epoch" in r]
        if not records:
            continue
        xs = _x_values(records, key)
        line, = ax_bleu.plot(xs, [r["dev_bleu"] for r in records], marker="o", ms=3, label=run.name)
        ax_loss.plot(xs, [r["train_loss"] for r in records], color=line.get_color(), label=f"{run.name} train")
        ax_loss.plot(xs, [r["dev_loss"] for r in records], color=line.get_color(), ls="--", label=f"{run.name} dev")
    signature = json.loads((runs[0] / "info.json").read_text()).get("bleu_signature", "") if runs else ""
    ax_bleu.set(title=f"dev BLEU (greedy)\n{signature}", xlabel=label, ylabel="BLEU")
    ax_loss.set(title="loss per target token (train: smoothed; dev: NLL)", xlabel=label, ylabel="loss")
    for ax in (ax_bleu, ax_loss):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    ax_bleu.title.set_fontsize(8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def _x_values(records: list[dict], key: str) -> list[float]:
    if key != "minutes":
        return [r[key] for r in records]
    total, xs = 0.0, []
    for r in records:
        total += r["seconds"] / 60
        xs.append(round(total, 2))
    return xs
