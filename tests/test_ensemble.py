"""Ensembles (mt/ensemble.py): one model's ensemble is that model, mixing is a probability average,
members of different families decode together, and mismatched members are one clear error."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from mt.cli import main
from mt.ensemble import Ensemble
from mt.model import build_model, reorder_state
from mt.search import beam_search, greedy, max_lengths
from mt.translate import Translator
from tests.helpers import CONFIGS, V_SRC, V_TGT, batch, runs_dir, runs_in, train_tiny


def _model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(*CONFIGS[name], V_SRC, V_TGT).eval()


def _decode(model, beam: int):
    src, src_len, _ = batch()
    limit = max_lengths(src_len, 1.5, 5, 100)
    if beam == 1:
        return [(h.tokens, h.score) for h in greedy(model, src, src_len, limit)]
    return [[(h.tokens, h.score) for h in hyps] for hyps in beam_search(model, src, src_len, limit, beam, 0.6, nbest=3)]


@pytest.mark.parametrize("name", ["transformer-pre", "rnn-luong"])
@pytest.mark.parametrize("beam", [1, 4])
@pytest.mark.parametrize("combine", ["prob", "logprob"])
def test_an_ensemble_of_one_is_that_model_exactly(name, beam, combine):
    model = _model(name)
    assert _decode(Ensemble([model], combine=combine), beam) == _decode(model, beam)


@pytest.mark.parametrize("combine", ["prob", "logprob"])
@pytest.mark.parametrize("beam", [1, 4])
def test_two_identical_members_translate_as_one(beam, combine):
    model = _model("transformer-pre")
    single, double = _decode(model, beam), _decode(Ensemble([model, model], [0.3, 0.7], combine), beam)
    tokens = lambda out: [x[0] for x in out] if beam == 1 else [[h[0] for h in hyps] for hyps in out]  # noqa: E731
    assert tokens(double) == tokens(single)


def test_the_mixture_is_the_weighted_mean_of_probabilities():
    a, b = _model("transformer-pre"), _model("rnn-luong")
    src, src_len, tgt_in = batch()
    mixed = Ensemble([a, b], [3, 1])(src, src_len, tgt_in).exp()
    expected = 0.75 * a(src, src_len, tgt_in).softmax(-1) + 0.25 * b(src, src_len, tgt_in).softmax(-1)
    assert torch.allclose(mixed, expected, atol=1e-6)


def test_the_log_linear_mixture_is_a_normalized_weighted_mean_of_log_probabilities():
    a, b = _model("transformer-pre"), _model("rnn-luong")
    src, src_len, tgt_in = batch()
    mixed = Ensemble([a, b], [3, 1], "logprob")(src, src_len, tgt_in)
    la, lb = a(src, src_len, tgt_in).log_softmax(-1), b(src, src_len, tgt_in).log_softmax(-1)
    assert torch.allclose(mixed, (0.75 * la + 0.25 * lb).log_softmax(-1), atol=1e-5)
    assert torch.allclose(mixed.exp().sum(-1), torch.ones(mixed.shape[:-1]), atol=1e-5)
    # a token one member rules out stays (nearly) ruled out, unlike the mean of probabilities
    prob = Ensemble([a, b], [3, 1], "prob")(src, src_len, tgt_in)
    assert not torch.allclose(mixed, prob, atol=1e-3)


def test_state_reordering_with_members_of_different_families():
    """Each member's State follows the selected rows, by its own rules (the Transformer's per-sentence keys)."""
    a, b = _model("transformer-pre"), _model("rnn-luong")
    ens = Ensemble([a, b])
    src, src_len, tgt_in = batch()
    rows = torch.tensor([2, 0, 0])
    state = reorder_state(ens.encode(src, src_len), rows)
    got, _ = ens.decode_step(tgt_in[rows, 0], state)
    want, _ = ens.decode_step(tgt_in[:, 0], ens.encode(src, src_len))
    assert torch.allclose(got, want[rows], atol=1e-5)
    for member, member_state in zip((a, b), state.states):
        lp, _ = member.decode_step(tgt_in[rows, 0], member_state)
        full, _ = member.decode_step(tgt_in[:, 0], member.encode(src, src_len))
        assert torch.allclose(lp, full[rows], atol=1e-5)


def test_bad_weights_are_errors():
    from mt.errors import MTError

    a = _model("transformer-pre")
    with pytest.raises(MTError, match="2 weights for 1 models"):
        Ensemble([a], [0.5, 0.5])
    with pytest.raises(MTError, match="positive"):
        Ensemble([a, a], [1, 0])
    with pytest.raises(MTError, match="--combine"):
        Ensemble([a, a], combine="max")


# -- through the CLI, on tiny trained runs ------------------------------------------------------

@pytest.fixture(scope="module")
def two_families(tmp_path_factory):
    with runs_in(tmp_path_factory.mktemp("ens-runs")):
        return train_tiny("transformer", "ens-tf", epochs=8), train_tiny("seq2seq", "ens-rnn", epochs=8)


def test_translate_with_two_runs_names_both_and_matches_the_library(two_families, capsys, monkeypatch):
    tf, rnn = two_families
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", _Stdin(b"I am a student.\nWhere is the station?\n"))
    assert main(["translate", "--run", str(tf), "--run", str(rnn), "--weights", "0.6,0.4", "--beam", "3"]) == 0
    out, err = capsys.readouterr()
    assert "an ensemble of 2" in err and "ens-tf" in err and "ens-rnn" in err and "weight 0.60" in err
    paths = [tf / "final.safetensors" if (tf / "final.safetensors").exists() else tf / "best.safetensors",
             rnn / "final.safetensors" if (rnn / "final.safetensors").exists() else rnn / "best.safetensors"]
    translator = Translator.from_checkpoints(paths, weights=[0.6, 0.4])
    lines = [o[0].text for o in translator.translate(["I am a student.", "Where is the station?"], beam=3)]
    assert out.splitlines() == lines


def test_evaluate_an_ensemble_writes_its_own_run(two_families, capsys):
    tf, rnn = two_families
    assert main(["evaluate", "--run", str(tf), "--run", str(rnn), "--split", "test"]) == 0
    err = capsys.readouterr().err
    folder = next(p for p in runs_dir().glob("ensemble-*") if "ens-tf" in p.name)
    assert (folder / "eval-test.json").exists() and (folder / "ensemble.json").exists() and str(folder) in err
    assert main(["evaluate", "--run", str(tf), "--run", str(rnn), "--split", "dev", "--combine", "logprob",
                 "--weights", "0.7,0.3", "--name", "ens-tf-rnn-loglinear"]) == 0
    named = runs_dir() / "ens-tf-rnn-loglinear"
    members = json.loads((named / "ensemble.json").read_text())
    assert members["combine"] == "logprob" and members["weights"] == [0.7, 0.3] and (named / "eval-dev.json").exists()
    capsys.readouterr()
    shutil.copytree(rnn, runs_dir() / rnn.name)  # a training run where the ensemble would go
    for args in (["--run", str(tf), "--name", "x"], ["--run", str(tf), "--run", str(rnn), "--name", rnn.name],
                 ["--run", str(tf), "--run", str(rnn), "--name", "../x"]):
        assert main(["evaluate", *args, "--split", "dev"]) == 2
        err = capsys.readouterr().err
        assert err.count("mt: error:") == 1 and "--name" in err


def test_members_with_different_vocabularies_are_one_error(two_families, capsys):
    tf, _ = two_families
    other = train_tiny("transformer", "ens-other-vocab", epochs=1, extra=["data.min_count=3"])
    capsys.readouterr()
    assert main(["evaluate", "--run", str(tf), "--run", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("mt: error:") == 1 and "vocabular" in err and "Traceback" not in err


@pytest.mark.slow  # a benchmark of three systems
def test_bench_translate_measures_the_ensemble_beside_its_members(two_families, capsys, tmp_path):
    tf, rnn = two_families
    out = tmp_path / "bench.json"
    assert main(["bench", "translate", "--run", str(tf), "--run", str(rnn), "--weights", "0.6,0.4", "--alpha", "1.0",
                 "--repeats", "1", "--threads", "1", "--limit", "3", "--json", str(out)]) == 0
    assert "ensemble of 2" in capsys.readouterr().out
    record = json.loads(out.read_text())
    systems = [r["system"] for r in record["rows"]]
    assert systems[0].startswith("ens-tf/") and systems[2].startswith("ens-rnn/") and systems[4:] == ["ensemble of 2"] * 2
    assert {r["engine"] for r in record["rows"]} == {"torch"} and "torch engines only" in record["notes"][0]
    assert all(r["sentences_per_s"] > 0 and r["command_seconds"] > 0 for r in record["rows"])


def test_a_repeated_run_is_never_silently_the_last_one(two_families, capsys, tmp_path):
    tf, rnn = two_families
    code = main(["attention", "--run", str(tf), "--run", str(rnn), "I am a student.", "--out", str(tmp_path / "a.png")])
    assert code == 2 and "--run given 2 times" in capsys.readouterr().err


class _Stdin:
    def __init__(self, data: bytes) -> None:
        import io

        self.buffer = io.BytesIO(data)
