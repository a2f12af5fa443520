"""`mt compare`: bootstrap intervals and paired tests equal to sacrebleu's, the guards, seed groups, formats."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.significance import PairedTest

from mt import compare, corpora, metrics, significance
from mt.cli import main
from mt.text import segment_ja
from tests.helpers import runs_dir, runs_in, train_tiny

SAMPLE = Path(__file__).resolve().parent.parent / "corpora" / "sample.tsv"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Tokenized references (the sample corpus's Japanese, segmented) and hypotheses of known quality."""
    refs = [" ".join(segment_ja(line.split("\t")[1])) for line in SAMPLE.read_text(encoding="utf-8").splitlines()]
    rnd = random.Random(7)

    def damaged(p: float) -> list[str]:
        return [" ".join(w for w in r.split() if rnd.random() > p) for r in refs]

    folder = tmp_path_factory.mktemp("compare")
    out = {"ref": refs, "base": damaged(0.3), "better": damaged(0.05), "close": damaged(0.29)}
    out["copy"] = out["base"]
    paths = {}
    for name, lines in out.items():
        paths[name] = folder / f"{name}.txt"
        paths[name].write_text("".join(x + "\n" for x in lines), encoding="utf-8")
    return paths


def _report(files: dict[str, Path], names: list[str], test: str = "bs", n: int = 1000) -> dict:
    systems = compare.file_systems(files["ref"], [files[n_] for n_ in names], ref_tokenized=True)
    return compare.compare(systems, test, n)


def _row(report: dict, key: str, system: str) -> dict:
    return next(r for r in report["scores"][key]["rows"] if r["system"] == f"{system}.txt")


@pytest.mark.parametrize("test", ["bs", "ar"])
def test_a_clearly_better_system_is_significant_and_a_copy_is_not(files, test):
    report = _report(files, ["base", "better", "copy"], test, 1000)
    for key in ("bleu_tok", "bleu_ja", "chrf"):
        assert _row(report, key, "better")["p"] < 0.05
        assert _row(report, key, "copy")["p"] == 1.0 and _row(report, key, "copy")["delta"] == 0.0
        holm = _row(report, key, "better")["p_holm"]
        assert _row(report, key, "better")["p"] <= holm <= 1.0


def test_equal_to_sacrebleus_paired_test(files):
    """Scores, bootstrap means and intervals, p-values: sacrebleu's own PairedTest, to the last bit."""
    refs = corpora.read_lines(files["ref"])
    refs = list(refs)
    hyps = {n: list(corpora.read_lines(files[n])) for n in ("base", "better", "close")}
    report = _report(files, ["base", "better", "close"])
    for key, metric in (("bleu_tok", BLEU(tokenize="none")), ("chrf", CHRF())):
        _, scores = PairedTest([(n, h) for n, h in hyps.items()], {"m": metric}, [refs], test_type="bs",
                               n_samples=1000)()
        theirs = next(v for k, v in scores.items() if k != "System")
        ours = report["scores"][key]["rows"]
        for r, o in zip(theirs, ours):
            assert r.score == pytest.approx(o["score"], abs=1e-9)
            assert r.mean == pytest.approx(o["interval"]["mean"], abs=1e-4)
            assert r.ci == pytest.approx(o["interval"]["half_width"], abs=1e-4)
            if r.p_value is not None:
                assert r.p_value == o["p"]


def test_equal_to_sacrebleus_cli(files):
    """`sacrebleu REF -i BASE A -m bleu chrf --paired-bs` prints our figures (at its precision)."""
    cli = Path(sys.executable).parent / "sacrebleu"
    done = subprocess.run([str(cli), str(files["ref"]), "-i", str(files["base"]), str(files["close"]), "-m", "bleu",
                           "chrf", "--paired-bs", "-tok", "none", "--format", "text"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    numbers = [float(x) for x in re.findall(r"\d+\.\d+", done.stdout.split("Paired bootstrap")[0])]
    report = _report(files, ["base", "close"])
    ours = []
    for i in range(2):  # row by row, BLEU then chrF, as the CLI's table
        for key in ("bleu_tok", "chrf"):
            row = report["scores"][key]["rows"][i]
            ours += [round(row["score"], 1), round(row["interval"]["mean"], 1), round(row["interval"]["half_width"], 1)]
        if i == 1:
            ours += [round(report["scores"][k]["rows"][1]["p"], 4) for k in ("bleu_tok", "chrf")]
    assert numbers == ours, (numbers, ours)


def test_sacrebleu_calls_a_copy_of_the_baseline_significant_and_mt_does_not(files):
    """sacrebleu counts only differences *greater* than the observed one: for an identical system every
    resampled difference ties the observed 0, and it reports p = 1/(N+1) ('significantly different')."""
    refs = list(corpora.read_lines(files["ref"]))
    base = list(corpora.read_lines(files["base"]))
    _, scores = PairedTest([("base", base), ("copy", list(base))], {"m": BLEU(tokenize="none")}, [refs],
                           test_type="bs", n_samples=1000)()
    theirs = next(v for k, v in scores.items() if k != "System")[1].p_value
    assert theirs == pytest.approx(1 / 1001)
    assert _row(_report(files, ["base", "copy"]), "bleu_tok", "copy")["p"] == 1.0


def test_two_bleu_variants_do_not_overwrite_each_other(files):
    """sacrebleu keys results by metric name ('BLEU' for both); mt keys by score."""
    report = _report(files, ["base", "better"])
    assert report["scores"]["bleu_tok"]["rows"][0]["score"] != report["scores"]["bleu_ja"]["rows"][0]["score"]
    assert "tok:none" in report["scores"]["bleu_tok"]["signature"]
    assert "bs:1000" in report["scores"]["bleu_tok"]["signature"] and "seed:12345" in report["scores"]["chrf"]["signature"]


def test_results_are_reproducible_and_the_seed_matters(files):
    systems = compare.file_systems(files["ref"], [files["base"], files["close"]], True)
    a, b = compare.compare(systems), compare.compare(systems)
    c = compare.compare(systems, seed=1)
    assert a == b and a != c


def test_without_mecab_both_ja_bleus_fall_back_to_janome_and_say_so(files, monkeypatch):
    """Without MeCab, `mt evaluate` (metrics.ja_bleu) and `mt compare` segment with janome, score alike, and
    both signatures name janome rather than tok:none."""
    monkeypatch.setattr(metrics, "mecab_available", lambda: False)
    systems = compare.file_systems(files["ref"], [files["base"]], ref_tokenized=True)
    score, signature = metrics.ja_bleu(systems[0].hyps, systems[0].refs)
    block = compare.compare(systems, n=10)["scores"]["bleu_ja"]
    assert block["rows"][0]["score"] == pytest.approx(score)
    assert "tok:ja-janome" in signature and block["signature"].startswith(signature + "|bs:10")


def test_holm_adjustment():
    assert significance.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert significance.holm([0.5]) == [0.5]


def test_learner_bands():
    assert compare.band(15) == "hard to get the gist"
    assert compare.band(45) == "high quality" and compare.band(35) == "understandable to good"


@pytest.mark.parametrize("fmt", ["table", "markdown", "latex"])
def test_formats_and_wording(files, capsys, fmt):
    args = ["compare", "--ref", str(files["ref"]), "--ref-tokenized", "--format", fmt, "--hyps",
            str(files["base"]), str(files["better"]), str(files["copy"])]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "significantly different at p < 0.05" in out and "not significantly different" in out
    assert "better" not in out.replace("better.txt", "").replace("often better than human", "")  # never "better"
    assert "Holm" in out and "seed 12345" in out
    if fmt == "latex":
        assert r"\begin{tabular}" in out


def test_json_round_trips(files, capsys):
    assert main(["compare", "--ref", str(files["ref"]), "--ref-tokenized", "--format", "json", "--hyps",
                 str(files["base"]), str(files["better"])]) == 0
    report = json.loads(capsys.readouterr().out)
    assert json.loads(json.dumps(report)) == report
    assert report["scores"]["bleu_tok"]["rows"][1]["p"] < 0.05


# -- guards ------------------------------------------------------------------------------------

def _one_line(err: str, *words: str) -> None:
    lines = [x for x in err.splitlines() if x.startswith("mt: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], err


def test_guard_line_counts(files, tmp_path, capsys):
    short = tmp_path / "short.txt"
    short.write_text("".join(files["base"].read_text(encoding="utf-8").splitlines(keepends=True)[:-3]), encoding="utf-8")
    assert main(["compare", "--ref", str(files["ref"]), "--ref-tokenized", "--hyps", str(files["base"]), str(short)]) == 2
    _one_line(capsys.readouterr().err, "not comparable", "short.txt", "lines")


def test_guard_tokenized_where_detokenized_is_expected(files, capsys):
    assert main(["compare", "--ref", str(files["ref"]), "--hyps", str(files["base"]), str(files["better"])]) == 2
    _one_line(capsys.readouterr().err, "look tokenized", "--ref-tokenized")
    assert main(["compare", "--force", "--ref", str(files["ref"]), "--hyps", str(files["base"]), str(files["better"])]) == 0
    assert "mt: warning: not comparable" in capsys.readouterr().err


@pytest.fixture(scope="module")
def evaluated_runs(tmp_path_factory) -> list[Path]:
    """Two tiny runs differing only in their seed, evaluated on test and dev."""
    with runs_in(tmp_path_factory.mktemp("cmp-runs")):
        runs = [train_tiny("transformer", f"cmp-seed{s}", epochs=6, extra=[f"train.seed={s}"]) for s in (1, 2)]
        for run in runs:
            for split in ("test", "dev"):
                assert main(["evaluate", "--run", str(run), "--split", split]) == 0
    return runs


def test_runs_seed_groups_and_the_run_table(evaluated_runs, capsys):
    capsys.readouterr()
    assert main(["compare", *[str(r) for r in evaluated_runs]]) == 0
    out = capsys.readouterr().out
    assert "dev BLEU" in out and "params" in out and "tgt tok/s" in out  # the training columns stay
    assert "mean ± sd across seeds" in out and "cmp-seed1" in out
    assert "BLEU (ja-mecab)" in out and "chrF" in out


def test_seed_groups_ignore_operational_settings_and_never_hold_an_ensemble(evaluated_runs, tmp_path, capsys):
    a, b = evaluated_runs
    variants = {}
    for name, old, new in (("threads", "threads = ", "threads = 7 #"), ("lr", "lr = ", "lr = 0.123 #")):
        folder = tmp_path / name
        shutil.copytree(b, folder)
        cfg = (folder / "config.toml").read_text(encoding="utf-8")
        (folder / "config.toml").write_text(re.sub(rf"^{old}", new, cfg, count=1, flags=re.M), encoding="utf-8")
        variants[name] = folder
    assert main(["evaluate", "--run", str(a), "--run", str(b), "--name", "cmp-ens"]) == 0
    ensemble = runs_dir() / "cmp-ens"
    groups = compare.seed_groups([a, b, variants["threads"], variants["lr"], ensemble])
    assert groups == [[a, b, variants["threads"]]]  # another lr is another recipe; an ensemble is no seed
    capsys.readouterr()
    assert main(["compare", str(a), str(ensemble)]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("cmp-ens "))
    params = sum(json.loads((r / "info.json").read_text())["params"] for r in (a, b))
    assert "ensemble of 2" in row and row.split()[4:6] == [f"{params}", "-"]  # members' params summed; no epochs


def test_dev_is_a_warning(evaluated_runs, capsys):
    assert main(["compare", "--split", "dev", *[str(r) for r in evaluated_runs]]) == 0
    assert "comparing on dev" in capsys.readouterr().err


def test_guard_different_references_and_signatures(evaluated_runs, tmp_path, capsys):
    other = tmp_path / "other"
    shutil.copytree(evaluated_runs[1], other)
    ev = json.loads((other / "eval-test.json").read_text(encoding="utf-8"))
    ref = tmp_path / "ref.ja"
    lines = Path(ev["ref"]).read_text(encoding="utf-8").splitlines()
    ref.write_text("".join(x + "\n" for x in [lines[1], lines[0], *lines[2:]]), encoding="utf-8")
    ev["ref"] = str(ref)
    (other / "eval-test.json").write_text(json.dumps(ev), encoding="utf-8")
    assert main(["compare", str(evaluated_runs[0]), str(other)]) == 2
    _one_line(capsys.readouterr().err, "different references", "cmp-seed1", "other")
    ev["ref"] = str(lines and json.loads((evaluated_runs[1] / "eval-test.json").read_text())["ref"])
    ev["bleu_ja_signature"] = ev["bleu_ja_signature"].replace("ja-mecab-0.996-IPA", "ja-janome")
    (other / "eval-test.json").write_text(json.dumps(ev), encoding="utf-8")
    assert main(["compare", str(evaluated_runs[0]), str(other)]) == 2
    _one_line(capsys.readouterr().err, "different BLEU (ja-mecab) signatures")


def test_a_run_without_hypotheses_says_how_to_make_them(evaluated_runs, capsys):
    fresh = train_tiny("transformer", "cmp-fresh", epochs=1)
    capsys.readouterr()
    assert main(["compare", str(evaluated_runs[0]), str(fresh)]) == 0
    assert f"mt evaluate --run {fresh.name} --split test" in capsys.readouterr().err
    assert main(["compare", "--evaluate", str(evaluated_runs[0]), str(fresh)]) == 0
    assert (fresh / "eval-test.json").exists()


def test_plot_refuses_different_dev_sets_and_draws_against_updates(evaluated_runs, tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert main(["compare", *[str(r) for r in evaluated_runs], "--plot", str(out), "--x", "updates"]) == 0
    assert out.stat().st_size > 1000
    other = tmp_path / "elsewhere"
    shutil.copytree(evaluated_runs[1], other)
    info = json.loads((other / "info.json").read_text())
    info["corpus"] = "tatoeba_jpn_eng"
    (other / "info.json").write_text(json.dumps(info))
    assert main(["compare", str(evaluated_runs[0]), str(other), "--plot", str(out)]) == 2
    _one_line(capsys.readouterr().err, "different corpora")


def test_counts_match_sacrebleus_resamples():
    counts = significance.bootstrap_counts(50, 20, seed=3)
    idxs = np.random.default_rng(3).choice(50, size=(20, 50), replace=True)
    assert (counts == np.stack([np.bincount(row, minlength=50) for row in idxs])).all()


def test_a_missing_hypothesis_file_is_one_line_naming_it(tmp_path, capsys):
    ref = tmp_path / "ref.ja"
    ref.write_text("私 は 学生 です 。\n", encoding="utf-8")
    missing = tmp_path / "nowhere.txt"
    assert main(["compare", "--ref", str(ref), "--ref-tokenized", "--hyps", str(ref), str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(missing) in err and "no such file" in err and "write" not in err
