"""The CUDA path: the same models, searches, trainer and checkpoints on a GPU.

Skipped where torch sees no CUDA device (CI and the 2-core CPU machines); run on a GPU machine with
`pytest tests/test_cuda.py`. fp32 comparisons turn TF32 off, so CPU and GPU differ only by summation order.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch

from mt.cli import main
from mt.model import build_model
from mt.search import beam_search, greedy, max_lengths
from tests.helpers import CONFIGS, V_SRC, V_TGT, batch, train_tiny, weights

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.fixture(autouse=True)
def _no_tf32():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


@pytest.mark.parametrize("name", list(CONFIGS))
def test_forward_and_search_match_cpu(name):
    """Same weights on CPU and GPU: the same scores, and greedy and beam pick the same tokens."""
    torch.manual_seed(0)
    kind, cfg = CONFIGS[name]
    cpu = build_model(kind, cfg, V_SRC, V_TGT).eval()
    gpu = copy.deepcopy(cpu).cuda()
    src, src_len, tgt_in = batch()
    with torch.no_grad():
        want = cpu(src, src_len, tgt_in)
        got = gpu(src.cuda(), src_len.cuda(), tgt_in.cuda())
    assert got.device.type == "cuda"
    torch.testing.assert_close(got.cpu(), want, atol=1e-4, rtol=1e-4)

    limit = max_lengths(src_len, 1.5, 5, 64)
    on_gpu = src.cuda(), src_len.cuda(), limit.cuda()
    assert [h.tokens for h in greedy(gpu, *on_gpu)] == [h.tokens for h in greedy(cpu, src, src_len, limit)]
    want_beam = beam_search(cpu, src, src_len, limit, beam=4, alpha=1.0, nbest=2)
    got_beam = beam_search(gpu, *on_gpu, beam=4, alpha=1.0, nbest=2)
    assert [[h.tokens for h in n] for n in got_beam] == [[h.tokens for h in n] for n in want_beam]
    for n_got, n_want in zip(got_beam, want_beam):
        assert [h.score for h in n_got] == pytest.approx([h.score for h in n_want], abs=1e-4)


def test_resume_on_cuda_continues_the_same_run():
    """2 epochs straight ≈ 1 epoch, resume, 1 more (dropout on: the CUDA RNG state must come back).
    Not bit-exact: some CUDA backward kernels add in a nondeterministic order."""
    extra = ["model.dropout=0.2", 'train.precision="fp32"']
    straight = train_tiny("transformer", "cuda-straight", 2, extra, device="cuda")
    half = train_tiny("transformer", "cuda-half", 1, extra, device="cuda")
    assert main(["train", "--resume", str(half), "--epochs", "2", "--device", "cuda"]) == 0
    a, b = weights(straight / "last.safetensors"), weights(half / "last.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("kind", ["transformer", "seq2seq"])
def test_bf16_training_on_cuda_then_cpu_inference(kind, capsys):
    """precision = auto trains in bf16 on a GPU; the checkpoint is device-free: it loads and
    translates on the CPU, and `mt evaluate --device cuda` scores it."""
    run = train_tiny(kind, f"cuda-{kind}", 6, ['train.precision="auto"'], device="cuda")
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    losses = [r["train_loss"] for r in rows if "train_loss" in r]
    assert len(losses) == 6 and all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0]

    from mt.experiments import best_checkpoint
    from mt.translate import Translator

    cpu = Translator.from_checkpoint(best_checkpoint(run), device="cpu")
    gpu = Translator.from_checkpoint(best_checkpoint(run), device="cuda")
    assert next(gpu.model.parameters()).device.type == "cuda"
    lines = ["I like cats.", "Where is the station?"]
    out_cpu = [o[0].text for o in cpu.translate(lines, beam=1)]
    assert len(out_cpu) == 2
    assert [o[0].text for o in gpu.translate(lines, beam=1)] == out_cpu
    capsys.readouterr()
    assert main(["evaluate", "--run", str(run), "--split", "dev", "--device", "cuda"]) == 0
    assert "BLEU" in capsys.readouterr().out
