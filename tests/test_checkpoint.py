"""The checkpoint file (mt/checkpoint.py): metadata from the header alone, averaging (the mean, ties kept),
derived metadata, the atomic copy, one loader, and one clear line for every file that is not a checkpoint."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from mt import checkpoint as ckpt
from mt.cli import main
from mt.errors import MTError
from mt.experiments import best_checkpoint
from mt.model import build_model
from tests.helpers import CONFIGS, V_SRC, V_TGT

META = {"config": {"model": {"type": "transformer"}}, "src_vocab": ["a"], "tgt_vocab": ["b"], "trainer": {"epoch": 3}}


def _tied_model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model(*CONFIGS["transformer-pre"], V_SRC, V_TGT)
    assert model.output.weight is model.tgt_embed.weight  # the tie this file is about
    return model


def test_read_meta_reads_the_header_alone(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    ckpt.save_model(path, _tied_model(0).state_dict(), META)
    full = ckpt.load(path)[1]

    def no_tensors(*_args, **_kwargs):
        raise AssertionError("read_meta loaded the tensors")

    monkeypatch.setattr(ckpt, "load_file", no_tensors)
    assert ckpt.read_meta(path) == full and full["trainer"] == {"epoch": 3}


@pytest.mark.parametrize("read", [ckpt.read_meta, ckpt.load, ckpt.load_model])
def test_a_file_that_is_not_a_checkpoint_is_one_clear_error(tmp_path, read):
    with pytest.raises(MTError, match="checkpoint not found"):
        read(tmp_path / "missing.safetensors")
    bogus = tmp_path / "bogus.safetensors"
    bogus.write_bytes(b"not a checkpoint at all")
    with pytest.raises(MTError, match="not a checkpoint"):
        read(bogus)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, plain)
    with pytest.raises(MTError, match="not an mt checkpoint"):
        read(plain)


def test_average_is_the_elementwise_mean_and_a_tie_stays_one_tensor(tmp_path):
    paths = []
    for seed in range(3):
        paths.append(tmp_path / f"epoch-{seed + 1}.safetensors")
        ckpt.save_model(paths[-1], _tied_model(seed).state_dict(), META)
    epochs = [ckpt.load_weights(p) for p in paths]
    weights, meta = ckpt.average(paths)
    assert weights.keys() == epochs[0].keys()
    assert any(not torch.equal(epochs[0][k], epochs[1][k]) for k in weights)  # a mean of different values
    for key, value in weights.items():
        torch.testing.assert_close(value, torch.stack([w[key].double() for w in epochs]).mean(0).float())
    assert weights["output.weight"] is weights["tgt_embed.weight"]
    assert meta == META  # the model's description; the file's own bookkeeping (format, ties) is redone at save
    out = tmp_path / "averaged.safetensors"
    ckpt.save_model(out, weights, meta)
    with safe_open(out, framework="pt") as f:
        assert "model.tgt_embed.weight" in f.keys() and "model.output.weight" not in f.keys()  # stored once
    loaded = ckpt.load(out)[0]
    out_proj, embed = loaded["model.output.weight"], loaded["model.tgt_embed.weight"]
    assert out_proj.data_ptr() == embed.data_ptr() and torch.equal(out_proj, weights["tgt_embed.weight"])


def test_average_refuses_checkpoints_of_different_models(tmp_path):
    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    ckpt.save_model(a, _tied_model(0).state_dict(), META)
    ckpt.save_model(b, build_model(*CONFIGS["rnn-luong"], V_SRC, V_TGT).state_dict(), META)
    with pytest.raises(MTError, match="different weights"):
        ckpt.average([a, b])


def test_average_command_on_a_run(tiny_run, capsys):
    """`mt average`: the run's last epoch checkpoints averaged; the tied output projection is still the embedding."""
    assert main(["average", str(tiny_run), "--last", "3"]) == 0
    out = tiny_run / "averaged.safetensors"
    epochs = ckpt.read_meta(out)["averaged_epochs"]
    assert f"averaged epochs {epochs} into {out}" in capsys.readouterr().out and len(epochs) == 3
    members = [ckpt.load_weights(tiny_run / f"epoch-{e}.safetensors") for e in epochs]
    averaged = ckpt.load_weights(out)
    assert averaged.keys() == members[0].keys()
    for key, value in averaged.items():
        torch.testing.assert_close(value, torch.stack([m[key].double() for m in members]).mean(0).float())
    # stored once, one tensor after load: the output projection is the embedding
    assert ckpt.read_meta(out)["tied"] == {"model.output.weight": "model.tgt_embed.weight"}
    assert averaged["output.weight"].data_ptr() == averaged["tgt_embed.weight"].data_ptr()
    model = ckpt.load_model(out)[0]
    assert model.output.weight is model.tgt_embed.weight and torch.equal(model.output.weight, averaged["output.weight"])


def test_derived_meta_keeps_the_model_and_names_its_source(tmp_path):
    meta = {**META, "src_sp": None, "optimizer": {"lr": 1}, "format": ckpt.FORMAT}
    derived = ckpt.derived_meta(meta, tmp_path / "best.safetensors", {"config": {"changed": True}, "pruned": {}})
    assert derived == {"config": {"changed": True}, "src_vocab": ["a"], "tgt_vocab": ["b"], "src_sp": None,
                       "compressed_from": str(tmp_path / "best.safetensors"), "pruned": {}}


def test_load_model_float_only_refuses_int8(tiny_run, tmp_path):
    from mt.tools.compress import quantize

    int8 = tmp_path / "int8.safetensors"
    ckpt.save(int8, *quantize(best_checkpoint(tiny_run)))
    assert ckpt.load_model(int8)[2]["quantized"]
    with pytest.raises(MTError, match="already quantized"):
        ckpt.load_model(int8, float_only=True)
    with pytest.raises(MTError, match="CPU only"):
        ckpt.load_model(int8, "cuda")


def test_copy_replaces_atomically_and_leaves_no_temp_file(tmp_path):
    src, dst = tmp_path / "best.safetensors", tmp_path / "final.safetensors"
    ckpt.save_model(src, _tied_model(0).state_dict(), META)
    dst.write_bytes(b"old")
    ckpt.copy(src, dst)
    assert dst.read_bytes() == src.read_bytes() and sorted(p.name for p in tmp_path.iterdir()) == [src.name, dst.name]
    mask = os.umask(0)
    os.umask(mask)
    assert dst.stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(MTError, match=f"cannot write {Path('/proc/final.safetensors')}"):
        ckpt.copy(src, Path("/proc/final.safetensors"))
