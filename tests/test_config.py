"""Config: TOML round trip, unknown keys, enumerated options checked at load (mt/config.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mt import config, corpora
from mt.cli import main
from mt.errors import MTError
from tests.helpers import tiny_train_args


def test_config_round_trip_and_errors():
    cfg = config.build({"model": {"type": "seq2seq", "attention": "bahdanau"}}, ["train.lr=3e-4", "decode.beam=4"])
    assert cfg.model.attention == "bahdanau" and cfg.train.lr == 3e-4 and cfg.decode.beam == 4
    import tomllib

    again = config.build(tomllib.loads(config.to_toml(cfg)))
    assert again == cfg
    with pytest.raises(MTError, match="unknown key 'atention'"):
        config.build({"model": {"type": "seq2seq", "atention": "luong"}})
    with pytest.raises(MTError, match="unknown section"):
        config.build({"trian": {}})
    with pytest.raises(MTError, match="unknown model"):
        config.build({}, model_type="lstm")
    with pytest.raises(MTError, match="decode.clauses must be ≥ 0"):
        config.build({"decode": {"clauses": -1}})


ENUMERATED = [  # every option with a fixed set of values, a typo of it, and one valid value it must name
    ("data.src_tokenizer", "spaces", "space"), ("data.tgt_tokenizer", "mecab", "janome"),
    ("data.subword", "bpe2", "unigram"), ("train.optimizer", "sgd", "adamw"), ("train.schedule", "cosin", "cosine"),
    ("train.precision", "fp16", "bf16"), ("decode.length_penalty", "gnmt", "wu"),
    ("model.norm", "middle", "post"), ("model.cell", "rnn", "gru"), ("model.attention", "dot", "bahdanau"),
]


@pytest.mark.parametrize("key, typo, valid", ENUMERATED)
def test_a_typo_in_an_enumerated_option_fails_at_load_naming_the_valid_values(key, typo, valid, capsys, monkeypatch):
    """Before any data work (corpora.resolve is never reached) and with no run folder left behind."""
    def no_data_work(*args, **kwargs):
        raise AssertionError("the config should have failed before the corpus was touched")

    monkeypatch.setattr(corpora, "resolve", no_data_work)
    model = "seq2seq" if key in ("model.cell", "model.attention") else "transformer"
    args = tiny_train_args(model, "typo", 1, [f'{key}="{typo}"'])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("mt: error:") and err.count("\n") == 1, err
    assert key in err and typo in err and valid in err and "valid" in err
    assert not (Path(os.environ["MT_RUNS_DIR"]) / "typo").exists()


def test_the_retry_after_a_typo_is_not_refused(capsys):
    assert main(tiny_train_args("transformer", "retry", 1, ['train.schedule="cosin"'])) == 2
    assert main(tiny_train_args("transformer", "retry", 1, ['train.schedule="cosine"'])) == 0


def test_one_loader_for_train_bench_and_distill(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[model]\ntype = "seq2seq"\ncell = "gru"\n[data]\ncorpus = "sample"\n')
    cfg = config.load(None, path, ["train.lr=1e-3"], {"train.epochs": 3, "train.seed": None})
    assert cfg.model_type == "seq2seq" and cfg.model.cell == "gru" and cfg.train.epochs == 3 and cfg.train.lr == 1e-3
    assert cfg.train.seed == config.TrainConfig().seed
    with pytest.raises(MTError, match="--model transformer but .* configures a seq2seq"):
        config.load("transformer", path)
    student = config.load(None, path, base={"data": {"corpus": "teacher", "min_count": 5}})
    assert student.data.corpus == "sample" and student.data.min_count == 5  # the file's own values win


def test_auto_target_tokenizer_is_resolved_in_one_place():
    auto = config.DataConfig()
    assert auto.resolved(tokenized=True).tgt_tokenizer == "space"
    assert auto.resolved(tokenized=False).tgt_tokenizer == "janome"
    assert config.DataConfig(tgt_tokenizer="janome").resolved(tokenized=True).tgt_tokenizer == "janome"


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "experiments").glob("*.toml")),
                         ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = config.load(None, path)
    assert cfg.model_type in ("transformer", "seq2seq")


def test_a_config_is_checked_without_loading_torch():
    """`mt train` validates its config before torch loads (about a second), so a typo fails at once."""
    import subprocess
    import sys

    code = "import sys; from mt import config; config.load('transformer'); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
