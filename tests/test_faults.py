"""Faults a user meets: a full disk while writing, two trainings claiming one run, a changed corpus cache."""

from __future__ import annotations

import errno
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mt import checkpoint, experiments
from mt.cli import main
from mt.errors import MTError
from tests.helpers import MIRROR, ROOT, needs_mirror, tiny_train_args, train_tiny


def _epochs_recorded(run: Path) -> list[int]:
    return [r["epoch"] for r in experiments.read_metrics(run) if "epoch" in r]


def _last_epoch(run: Path) -> int:
    return checkpoint.load(run / "last.safetensors")[1]["trainer"]["epoch"]


def _one_line_error(err: str, *words: str) -> None:
    assert err.startswith("mt: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


# -- 1. a full disk ------------------------------------------------------------------------

def _can_mount_tmpfs(where: Path) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(where)],
                        capture_output=True).returncode == 0
    return ok


def _fill(folder: Path) -> Path:
    """Write a file until the file system is full; returns it (delete it to free the space)."""
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    return filler


@pytest.mark.slow  # trains onto a tmpfs, fills it, resumes
def test_full_disk_on_a_real_small_file_system(tmp_path, capsys, monkeypatch):
    """A 6 MB tmpfs: the resume that finds it full stops with one line; freed, the resume goes on."""
    mnt = tmp_path / "small-disk"
    if not _can_mount_tmpfs(mnt):
        pytest.skip("cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN); the patched writer test covers it")
    try:
        monkeypatch.setenv("MT_RUNS_DIR", str(mnt / "runs"))
        run = train_tiny("transformer", "full-disk", epochs=1)
        capsys.readouterr()
        filler = _fill(mnt)
        assert main(["train", "--resume", "full-disk", "--epochs", "2"]) != 0
        _one_line_error(capsys.readouterr().err, "cannot write", "No space left on device", str(run))
        assert _last_epoch(run) == 1 and _epochs_recorded(run) == [1]  # the previous good checkpoint is kept
        assert not list(run.glob("*.tmp"))
        filler.unlink()
        assert main(["train", "--resume", "full-disk", "--epochs", "2"]) == 0
        assert _last_epoch(run) == 2 and _epochs_recorded(run) == [1, 2]
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.mark.slow  # trains, fails, resumes
def test_full_disk_when_last_is_written_redoes_the_epoch(capsys, monkeypatch):
    """ENOSPC from the writer (patched) at the epoch's last write: one line, `last` and the record agree on resume."""
    run = train_tiny("transformer", "enospc", epochs=1)
    real_save = checkpoint.save_file

    def full_for_last(tensors, path, metadata=None):
        if Path(path).name.startswith("last.safetensors"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(checkpoint, "save_file", full_for_last)
    capsys.readouterr()
    assert main(["train", "--resume", "enospc", "--epochs", "2"]) == 2
    _one_line_error(capsys.readouterr().err, f"cannot write {run / 'last.safetensors'}", "No space left on device")
    assert _last_epoch(run) == 1 and _epochs_recorded(run) == [1, 2]  # epoch 2 recorded, not in `last`
    monkeypatch.setattr(checkpoint, "save_file", real_save)
    assert main(["train", "--resume", "enospc", "--epochs", "2"]) == 0
    assert "were of epochs after the last checkpoint" in capsys.readouterr().out
    assert _last_epoch(run) == 2 and _epochs_recorded(run) == [1, 2]


def test_unwritable_outputs_are_one_line_errors(tiny_run, tmp_path, capsys, monkeypatch):
    """evaluate into a read-only folder, and translate to a full stdout: one line each, exit ≠ 0."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ckpt = ro / "model.safetensors"
    shutil.copy(experiments.best_checkpoint(tiny_run), ckpt)
    src, ref = tmp_path / "s.en", tmp_path / "r.ja"
    src.write_text("I am a student.\n")
    ref.write_text("私は学生です。\n")

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("mt.files.tempfile.mkstemp", no_space)
    assert main(["evaluate", "--checkpoint", str(ckpt), "--src", str(src), "--ref", str(ref)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    _one_line_error(err.splitlines()[-1] + "\n", "cannot write", "No space left on device")
    if MIRROR.is_dir():  # the corpus cache: nothing half-written is left behind
        monkeypatch.setenv("MT_CACHE", str(tmp_path / "cache"))
        assert main(["corpus", "fetch", "small_parallel_enja", "--mirror", str(MIRROR)]) == 2
        _one_line_error(capsys.readouterr().err, "cannot write", "No space left on device", "dev.en")
        assert not list((tmp_path / "cache").rglob("*.en"))
    monkeypatch.undo()
    proc = subprocess.run(f"printf 'I am a student.\\n' | {sys.executable} -m mt translate --checkpoint {ckpt} "
                          f"> /dev/full", shell=True, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("mt: error: cannot write"), proc.stderr


# -- 2. one run folder, one training -----------------------------------------------------------

def _claim_and_hold(run: str, go, results) -> None:
    go.wait()
    try:
        with experiments.claim_run(Path(run), resume=False):
            results.put("won")
            time.sleep(1.0)
    except MTError as e:
        results.put(str(e))


@pytest.mark.slow  # several processes
def test_concurrent_claims_of_one_run_exactly_one_wins(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_claim_and_hold, args=(str(tmp_path / "twin"), go, results)) for _ in range(4)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(30)
    outcomes = [results.get(timeout=5) for _ in procs]
    assert outcomes.count("won") == 1, outcomes
    assert all("already exists" in o for o in outcomes if o != "won"), outcomes


@pytest.mark.slow  # two training processes
def test_two_trainings_with_one_name_started_together():
    """Two `mt train --name twin` processes at the same moment: one trains, the other is refused."""
    cmd = [sys.executable, "-m", "mt", *tiny_train_args("transformer", "twin", 2)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(120), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results
    err = next(e for code, e in results if code == 2)
    _one_line_error(err, "already exists", "twin")
    run = Path(os.environ["MT_RUNS_DIR"]) / "twin"
    assert _epochs_recorded(run) == [1, 2]


def test_resume_of_a_run_still_training_is_refused_and_a_kill_releases_it(tmp_path):
    run = tmp_path / "busy"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from pathlib import Path; "
                               "from mt import experiments\n"
                               "with experiments.claim_run(Path(sys.argv[1]), resume=False):\n"
                               "    print('held', flush=True); time.sleep(60)", str(run)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(MTError, match=f"being trained by another process \\(pid {holder.pid}\\)"):
        with experiments.claim_run(run, resume=True):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with experiments.claim_run(run, resume=True):  # the kernel released the lock with the process
        pass


def test_a_start_that_fails_leaves_no_run_folder(capsys):
    args = tiny_train_args("transformer", "no-corpus", 1)
    args[args.index("--corpus") + 1] = "no/such/corpus.tsv"
    assert main(args) == 2
    assert "neither a known name" in capsys.readouterr().err
    assert not (Path(os.environ["MT_RUNS_DIR"]) / "no-corpus").exists()


# -- 3. a cache that changed ---------------------------------------------------------------------

@needs_mirror
def test_fetch_detects_a_changed_cached_file_and_fetches_it_again(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MT_CACHE", str(tmp_path / "cache"))
    assert main(["corpus", "fetch", "small_parallel_enja", "--mirror", str(MIRROR)]) == 0
    cached = tmp_path / "cache" / "corpora" / "small_parallel_enja" / "train.ja"
    lines = cached.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = "書き 換え た 行 。\n"
    cached.write_text("".join(lines), encoding="utf-8")
    capsys.readouterr()
    assert main(["corpus", "fetch", "small_parallel_enja", "--mirror", str(MIRROR)]) == 0
    out, err = capsys.readouterr()
    assert "train.ja" in err and "SHA256 mismatch" in err
    assert "SHA256 of" in out and "verified" in out
    assert cached.read_bytes() == (MIRROR / "small_parallel_enja" / "train.ja").read_bytes()


@needs_mirror
def test_fetch_resplits_a_changed_split_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MT_CACHE", str(tmp_path / "cache"))
    assert main(["corpus", "fetch", "tatoeba_jpn_eng", "--mirror", str(MIRROR)]) == 0
    dev = tmp_path / "cache" / "corpora" / "tatoeba_jpn_eng" / "split" / "dev.ja"
    original = dev.read_bytes()
    dev.write_bytes(original + "余計な行\n".encode())
    capsys.readouterr()
    assert main(["corpus", "fetch", "tatoeba_jpn_eng", "--mirror", str(MIRROR)]) == 0
    assert "split files changed" in capsys.readouterr().err
    assert dev.read_bytes() == original


def test_atomic_writes_give_files_the_usual_mode(tmp_path):
    """Temp-file-and-rename writes end with the mode a plain open() gives (0o666 less the umask), not 0o600."""
    import torch

    from mt import files

    mask = os.umask(0)
    os.umask(mask)
    (tmp_path / "plain.txt").write_text("x\n")
    files.write_text(tmp_path / "a.txt", "x\n")
    checkpoint.save(tmp_path / "c.safetensors", {"w": torch.zeros(2)}, {})
    for name in ("plain.txt", "a.txt", "c.safetensors"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~mask
