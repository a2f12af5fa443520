"""`mt bench`: both subcommands run end to end on tiny models; fields exist and are positive (no timing limits)."""

from __future__ import annotations

import ctypes
import json
import os
from pathlib import Path

import pytest

from mt import memory
from mt.cli import main
from mt.experiments import best_checkpoint
from mt.tools import bench_overhead
from tests.helpers import ROOT, one_line_error, runs_in, shared_runs, tiny_sets, train_tiny

TRAIN_FIELDS = ["tgt_tokens_per_s", "src_tgt_tokens_per_s", "ms_per_step", "model_flops_per_s", "matmul_peak_fp32",
                "matmul_peak_bf16", "mfu", "peak_rss_mb", "params", "flops_per_src_token", "flops_per_tgt_token"]
ROW_FIELDS = ["sentences_per_s", "peak_rss_mb", "command_seconds"]


@pytest.mark.slow  # a 2048² fp32 and bf16 matmul peak, 5 tries each, besides the training
def test_bench_train(tmp_path, capsys):
    out = tmp_path / "train.json"
    args = ["bench", "train", "--model", "transformer", "--config", str(ROOT / "tests" / "tiny.toml"),
            "--corpus", "sample", "--steps", "2", "--warmup", "1", "--repeats", "2", "--threads", "1",
            "--set", "train.trim_memory_every=1", "--json", str(out)]
    for s in tiny_sets("transformer"):
        args += ["--set", s]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for label in ("target tokens/s", "source+target tokens/s", "ms/step", "model GFLOP/s", "MFU", "padding",
                  "peak RSS"):
        assert label in printed
    record = json.loads(out.read_text())
    assert all(record[k] > 0 for k in TRAIN_FIELDS), {k: record[k] for k in TRAIN_FIELDS}
    assert 0 <= record["pad_fraction"] < 1 and record["steps"] == 2 and len(record["seconds"]) == 2
    assert record["threads"] == 1 and record["trim_memory_every"] == 1
    assert record["heap_in_use_end_mb"] is None or record["heap_in_use_end_mb"] > 0
    assert record["kernel_cache"] == "16"  # the config's default reached the (spawned) training process
    assert "where the time goes" in printed and "Python and framework overhead" in printed
    shares = record["breakdown"]["share"]
    assert 0.99 <= sum(shares.values()) <= 1.05 and shares["matmul"] > 0 and shares["optimiser"] > 0
    assert shares["data"] > 0 and shares["loss"] > 0


def _rss_mb() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(memory._glibc() is None or not Path("/proc/self/statm").exists(), reason="glibc malloc_trim, Linux")
def test_trim_gives_freed_heap_back_to_the_os():
    """Every other one of 1024 touched 64 KB blocks (heap, under the mmap threshold) freed: holes free() cannot
    return (they do not border the heap's top), resident until trim() gives them back."""
    lib = memory._glibc()
    lib.malloc.restype, lib.malloc.argtypes, lib.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]
    blocks = [lib.malloc(65536) for _ in range(1024)]
    for b in blocks:
        ctypes.memset(b, 1, 65536)
    for b in blocks[::2]:
        lib.free(b)
    before = _rss_mb()
    assert memory.trim() is True
    assert _rss_mb() < before - 16  # of 32 MB in holes
    for b in blocks[1::2]:
        lib.free(b)


def test_trim_without_glibc_does_nothing(monkeypatch):
    monkeypatch.setattr(memory, "_libc", None)
    assert memory.trim() is False


def test_kernel_cache_limit_respects_the_user(monkeypatch):
    names = (memory.KERNEL_CACHE_ENV, memory.PRIMITIVE_CACHE_ENV)
    for name in names:
        monkeypatch.delenv(name, raising=False)
    assert not memory.limit_kernel_cache(0) and not any(n in os.environ for n in names)
    monkeypatch.setenv(memory.PRIMITIVE_CACHE_ENV, "64")  # exported by the user: kept
    assert memory.limit_kernel_cache(16)
    assert os.environ[memory.KERNEL_CACHE_ENV] == "16" and os.environ[memory.PRIMITIVE_CACHE_ENV] == "64"
    assert not memory.limit_kernel_cache(8)  # both set now: nothing changes


def test_bench_train_rejects_bad_counts(capsys):
    assert main(["bench", "train", "--corpus", "sample", "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err


@pytest.mark.slow  # a benchmark of two engines at two beams
def test_bench_translate(tmp_path, capsys):
    run = train_tiny("transformer", "bench-transformer", epochs=2)
    out = tmp_path / "translate.json"
    assert main(["bench", "translate", "--checkpoint", str(best_checkpoint(run)), "--engines", "torch,torch-int8",
                 "--repeats", "1", "--threads", "1", "--limit", "4", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "sent/s" in printed and "mt translate s" in printed
    record = json.loads(out.read_text())
    assert record["sentences"] == 4
    assert [(r["engine"], r["beam"]) for r in record["rows"]] == [
        ("torch", 1), ("torch", 5), ("torch-int8", 1), ("torch-int8", 5)]
    for row in record["rows"]:
        assert all(row[k] > 0 for k in ROW_FIELDS), row
        assert row["tokens_per_s"] >= 0 and 0 <= row["bleu"] <= 100  # an untrained model may say nothing
        b = row["breakdown"]
        assert b["units"] == 4 and abs(sum(b["share"].values()) - 1) < 0.05 and b["ms_per_unit"]["matmul"] > 0
    assert "where the time goes" in printed and "search" in printed


def test_bench_translate_at_several_batch_sizes_and_bf16_only_where_native(tiny_run, tmp_path, monkeypatch, capsys):
    from mt.tools import bench_translate

    monkeypatch.setattr(bench_translate, "native_bf16_cpu", lambda: False)
    out = tmp_path / "translate.json"
    assert main(["bench", "translate", "--run", str(tiny_run), "--engines", "torch,torch-bf16", "--batch-size", "2,4",
                 "--beam", "1", "--repeats", "1", "--threads", "1", "--limit", "4", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [(r["engine"], r["batch"]) for r in record["rows"]] == [("torch", 2), ("torch", 4)]
    assert any("torch-bf16 skipped" in n and "no native bf16" in n for n in record["notes"])
    assert record["rows"][0]["bleu"] == record["rows"][1]["bleu"]  # the batch changes the speed, not the output
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "translate", "--run", str(tiny_run), "--batch-size", "0"])
    assert exit_.value.code == 2 and "--batch-size" in capsys.readouterr().err


def test_bench_translate_counts_hypothesis_steps_at_each_patience(tiny_run, tmp_path, capsys):
    out = tmp_path / "translate.json"
    assert main(["bench", "translate", "--run", str(tiny_run), "--engines", "torch", "--patience", "0,1",
                 "--beam", "4", "--repeats", "1", "--threads", "1", "--limit", "6", "--json", str(out)]) == 0
    assert "hyp-steps/sent" in capsys.readouterr().out
    exact, patient = json.loads(out.read_text())["rows"]
    assert (exact["patience"], patient["patience"]) == (0, 1)
    assert 4 <= patient["hyp_steps"] <= exact["hyp_steps"]  # at least one step of 4 hypotheses per sentence
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "translate", "--run", str(tiny_run), "--patience", "-1"])
    assert exit_.value.code == 2 and "--patience" in capsys.readouterr().err


def test_bench_translate_unknown_engine(capsys):
    run = train_tiny("transformer", "bench-transformer-2", epochs=1)
    assert main(["bench", "translate", "--run", str(run), "--engines", "tensorrt"]) == 2
    assert "unknown engine" in capsys.readouterr().err


@pytest.mark.slow  # a load test at four settings and an 80-request soak
def test_bench_serve_load_and_soak(tmp_path, capsys):
    """Both settings at two client counts, and a small soak: fields exist, good answers are right (no timing limits)."""
    pytest.importorskip("fastapi", reason="mt serve is an optional extra: pip install 'mt-enja[serve]'")
    run = train_tiny("transformer", "bench-serve", epochs=4)
    out = tmp_path / "serve.json"
    assert main(["bench", "serve", "--run", str(run), "--clients", "1,4", "--requests", "3", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [(r["batching"], r["clients"]) for r in record["rows"]] == [(True, 1), (True, 4), (False, 1), (False, 4)]
    assert all(r["sentences_per_s"] > 0 and 0 < r["p50_ms"] <= r["p99_ms"] for r in record["rows"])
    assert main(["bench", "serve", "--run", str(run), "--soak", "80", "--json", str(out)]) == 0
    soak = json.loads(out.read_text())
    assert set(soak["outcomes"]) <= {"good answered correctly", "bad answered with its status"}
    assert soak["requests"] == 80 and soak["alive_after"] and soak["tracebacks_in_log"] == 0
    assert soak["rss_start_mb"] > 0 and soak["rss_end_mb"] > 0
    assert "soak: 80 requests" in capsys.readouterr().out


@pytest.fixture(scope="module")
def tiny_run() -> Path:
    """A one-epoch tiny Transformer, trained once for the overhead tests."""
    with runs_in(shared_runs("bench")):
        return train_tiny("transformer", "bench-overhead", epochs=1)


def _clauses(args: list[str]) -> bool:
    """Clause splitting on: the last --clauses (the variant's, after the run's) is not 0."""
    at = len(args) - 1 - args[::-1].index("--clauses")
    return args[at + 1] != "0"


def _fake_commands(monkeypatch) -> list[tuple[list[str], list[str]]]:
    """command_seconds replaced: each call's (arguments, input lines) is kept; the time says what was switched on
    (load 0.5 s; whole lines 1.0, splitting +0.1, checks +0.1, clauses +0.1, dictionary and numbers +0.1,
    dropped +0.1)."""
    calls = []

    def fake(args: list[str], src: Path, threads: int) -> float:
        lines = src.read_text(encoding="utf-8").splitlines()
        calls.append((args, lines))
        if not lines:
            return 0.5
        return 1.0 + 0.1 * (("--no-split" not in args) + ("--check" in args) + ("jmdict" in args)
                            + ("--dropped" in args) + _clauses(args))

    monkeypatch.setattr(bench_overhead, "command_seconds", fake)
    return calls


def test_bench_overhead_interleaves_the_variants_against_no_split(tiny_run, tmp_path, monkeypatch, capsys):
    calls = _fake_commands(monkeypatch)
    monkeypatch.setattr(bench_overhead, "jmdict_missing", lambda: None)
    out = tmp_path / "overhead.json"
    assert main(["bench", "translate", "--run", str(tiny_run), "--overhead", "--repeats", "2", "--beam", "3",
                 "--limit", "4", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    names = ["no-split", "split", "split + check", "split + clauses + check",
             "split + clauses + check + dictionary + numbers", "split + check + dropped"]
    assert [r["variant"] for r in record["rows"]] == names and record["beam"] == 3 and record["sentences"] == 4
    kinds = [("--no-split" in a, "--check" in a, _clauses(a), "jmdict" in a, "--dropped" in a, not lines)
             for a, lines in calls]
    rounds = [(True, False, False, False, False, False), (False, False, False, False, False, False),
              (False, True, False, False, False, False), (False, True, True, False, False, False),
              (False, True, True, True, False, False), (False, True, False, False, True, False),
              (False, False, False, False, False, True)]
    assert kinds == [rounds[-1], *rounds, *rounds]  # a warm-up load, then A B C D E F load, twice
    assert all(a[a.index("--beam") + 1] == "3" for a, _ in calls)
    assert all(lines == [] or len(lines) == 4 for _, lines in calls)
    base = record["rows"][0]["seconds"]
    for r in record["rows"]:
        assert r["vs_no_split"] == pytest.approx(r["seconds"] / base - 1) and len(r["runs"]) == 2
        assert r["minus_load_vs_no_split"] == pytest.approx((r["seconds"] - 0.5) / (base - 0.5) - 1)
    assert record["rows"][2]["vs_no_split"] == pytest.approx(0.2) and record["load_seconds"] == 0.5
    printed = capsys.readouterr().out
    assert "+20.0 %" in printed and "+40.0 %" in printed and "empty input" in printed


def test_bench_overhead_on_everyday_without_jmdict(tiny_run, tmp_path, monkeypatch, capsys):
    calls = _fake_commands(monkeypatch)
    monkeypatch.setattr(bench_overhead, "jmdict_missing", lambda: "needs JMdict")
    out = tmp_path / "overhead.json"
    assert main(["bench", "translate", "--run", str(tiny_run), "--overhead", "--corpus", "everyday", "--repeats", "1",
                 "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    everyday = (ROOT / "corpora" / "everyday" / "test.en").read_text(encoding="utf-8").splitlines()
    assert record["sentences"] == len(everyday) and record["split_sentences"] > len(everyday)  # some lines: several
    assert calls[1][1] == everyday and Path(record["test"]).parent.name == "everyday"
    assert [r["variant"] for r in record["rows"]] == ["no-split", "split", "split + check", "split + clauses + check",
                                                      "split + check + dropped"]
    assert not any("jmdict" in a for a, _ in calls)
    assert record["notes"] == ["dictionary variant skipped: needs JMdict"]
    assert "note: dictionary variant skipped" in capsys.readouterr().out


@pytest.mark.parametrize("mode", [["--overhead"], ["--engines", "torch"]])
def test_bench_translate_unknown_corpus(tiny_run, mode, capsys):
    assert main(["bench", "translate", "--run", str(tiny_run), "--corpus", "no-such-corpus", *mode]) == 2
    one_line_error(capsys.readouterr().err, "no-such-corpus")


def test_bench_translate_rejects_a_bad_beam(tiny_run, capsys):
    assert main(["bench", "translate", "--run", str(tiny_run), "--overhead", "--beam", "0"]) == 2
    one_line_error(capsys.readouterr().err, "--beam")


@pytest.mark.slow  # six whole `mt translate` commands
def test_bench_overhead_runs_mt_translate(tiny_run, tmp_path, capsys):
    out = tmp_path / "overhead.json"
    assert main(["bench", "translate", "--run", str(tiny_run), "--overhead", "--repeats", "1", "--threads", "1",
                 "--beam", "1", "--limit", "3", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["rows"][0]["variant"] == "no-split" and record["rows"][0]["vs_no_split"] == 0
    assert all(r["seconds"] > 0 for r in record["rows"]) and record["load_seconds"] > 0, record
    assert [r["args"][0] for r in record["rows"][:3]] == ["--no-split", "--dictionary", "--check"]
    assert "vs no-split" in capsys.readouterr().out


def test_bench_translate_measures_each_shortlist(tiny_run, tmp_path, capsys):
    out = tmp_path / "translate.json"
    assert main(["bench", "translate", "--run", str(tiny_run), "--engines", "torch,torch-int8", "--shortlist", "0,0",
                 "--shortlist", "100000,1", "--beam", "3", "--repeats", "1", "--threads", "1", "--limit", "6",
                 "--json", str(out)]) == 0
    assert "shortlist" in capsys.readouterr().out
    whole, every, int8_whole, int8_short = json.loads(out.read_text())["rows"]
    assert (whole["shortlist"], every["shortlist"], int8_short["shortlist"]) == ("0,0", "100000,1", "100000,1")
    assert whole["bleu"] == every["bleu"]  # a shortlist of every word decodes as the whole vocabulary
    assert int8_short["engine"] == "torch-int8" and int8_short["sentences_per_s"] > 0  # the run's shortlist, beside the copy
