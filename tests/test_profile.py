"""`mt bench`'s time breakdown books each op's own time to one category, by scope first, then by op name."""

from __future__ import annotations

import torch
from torch.profiler import record_function

from mt.loss import smoothed_cross_entropy
from mt.tools import profile


def test_a_matmul_heavy_pass_is_mostly_matmul():
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    result = profile.breakdown(lambda: [a @ b for _ in range(20)], units=20)
    assert result["share"]["matmul"] > 0.5
    assert 0.99 <= sum(result["share"].values()) <= 1.05  # every millisecond is booked once
    assert set(result["share"]) == set(profile.CATEGORIES)


def test_scopes_win_over_op_names():
    a = torch.randn(256, 256)
    logits, target = torch.randn(64, 100, requires_grad=True), torch.randint(1, 100, (64,))

    def work():
        with record_function("mt.data"):
            for _ in range(10):
                a @ a  # a matmul, but inside the data scope
        smoothed_cross_entropy(logits, target, 0.1, 0).backward()
        torch.nn.functional.scaled_dot_product_attention(*torch.randn(3, 1, 2, 8, 4).unbind(0))

    ms = profile.breakdown(work, units=1)["ms_per_unit"]
    assert ms["data"] > 0 and ms["loss"] > 0 and ms["attention"] > 0
    assert ms["data"] > ms["matmul"]  # the matmuls were booked to data


def test_categories_of_single_ops():
    x = torch.randn(8, 8)
    with torch.profiler.profile() as prof:
        x + x
        x.to(torch.bfloat16)
        torch.mm(x, x)
    names = {e.name: profile.category(e) for e in prof.profiler.function_events if e.cpu_parent is None}
    assert names["aten::add"] == "norms and element-wise"
    assert names["aten::to"] == "casts and copies"
    assert names["aten::mm"] == "matmul"


def test_a_decoding_step_books_its_output_layer_apart():
    """Both families' output layer and log-softmax are their own category (the part a vocabulary shortlist shrinks)."""
    from mt.model import build_model
    from tests.helpers import CONFIGS, V_SRC, V_TGT, batch

    src, src_len, tgt_in = batch()
    for name in ("transformer-pre", "rnn-luong"):
        model = build_model(*CONFIGS[name], V_SRC, V_TGT).eval()
        with torch.no_grad():
            state = model.encode(src, src_len)
            ms = profile.breakdown(lambda m=model, s=state: m.decode_step(tgt_in[:, 0], s), units=1)["ms_per_unit"]
        assert ms["output layer"] > 0, name
