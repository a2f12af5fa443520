"""Where the time goes: torch profiler events grouped into the categories `mt bench` prints.

Each profiled event's own time (self time: its duration less its children's) goes to one category, by
the nearest enclosing scope first, then by the op's name:
- scopes: `mt.data` (batching, collation), `mt.optimizer` (gradient clipping and the optimiser step),
  `mt.attention` (attention written out, as decoding on CPU runs it), `mt.output` (a decoding step's output
  layer and log-softmax over the target vocabulary: what a vocabulary shortlist would shrink),
  the label-smoothed loss (`_SmoothedCrossEntropy`, forward and backward), `mt.search` (beam search
  bookkeeping: top-k, reordering the state) — the scopes are `torch.profiler.record_function` labels;
- ops: matmul (mm, addmm, bmm, linear, int8 quantized::linear…), attention (scaled dot-product kernels, forward and backward),
  casts and copies (`_to_copy`, `copy_`: autocast's dtype conversions, contiguous copies), and the rest as
  norms and element-wise (layer norm, dropout, residual adds, ReLU, embedding, softmax outside attention).
"Python and framework overhead" is the wall time the profiled pass took less the time inside any op:
the interpreter, module calls, autograd bookkeeping between ops.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from torch.profiler import ProfilerActivity, profile

CATEGORIES = ("matmul", "attention", "output layer", "norms and element-wise", "casts and copies", "loss", "search",
              "optimiser", "data", "Python and framework overhead")
SCOPES = {"mt.data": "data", "mt.optimizer": "optimiser", "mt.search": "search", "mt.attention": "attention",
          "mt.output": "output layer",
          "_SmoothedCrossEntropy": "loss", "_SmoothedCrossEntropyBackward": "loss"}
MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear", "aten::addmv",
          "aten::mv", "aten::dot", "mkldnn", "onednn", "aten::_addmm_activation", "quantized::linear", "aten::fbgemm")
ATTENTION = ("scaled_dot_product", "flash_attention", "efficient_attention", "ScaledDotProduct")
CASTS = ("aten::_to_copy", "aten::copy_", "aten::to", "aten::contiguous", "aten::clone")


def _scope(event) -> str | None:
    """The category of the nearest enclosing scope (the event itself included), if any."""
    while event is not None:
        for name, category in SCOPES.items():
            if event.name == name or event.name.startswith(name + "#"):
                return category
        if any(a in event.name for a in ATTENTION):
            return "attention"
        event = event.cpu_parent
    return None


def category(event) -> str:
    """The category an event's self time is booked to."""
    scope = _scope(event)
    if scope is not None:
        return scope
    if any(event.name.startswith(m) for m in MATMUL):
        return "matmul"
    if event.name.startswith(CASTS):
        return "casts and copies"
    return "norms and element-wise"


def breakdown(work: Callable[[], object], units: int) -> dict:
    """Run `work` once under the profiler; ms per unit (step or sentence batch) and share of each category."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        work()
        wall_ms = (time.perf_counter() - start) * 1000
    totals = dict.fromkeys(CATEGORIES, 0.0)
    for event in prof.profiler.function_events:
        totals[category(event)] += event.self_cpu_time_total / 1000  # µs → ms
    in_ops = sum(totals.values())
    totals["Python and framework overhead"] = max(0.0, wall_ms - in_ops)
    return {"wall_ms": wall_ms, "units": units,
            "ms_per_unit": {k: v / units for k, v in totals.items()},
            "share": {k: v / wall_ms for k, v in totals.items()}}


def format_breakdown(b: dict, unit: str) -> list[str]:
    """Readable lines: one per category, ms per unit and share of the profiled wall time."""
    lines = [f"  where the time goes (torch profiler, one extra pass of {b['units']} {unit}s, "
             f"{b['wall_ms'] / b['units']:.1f} ms per {unit} with the profiler on):"]
    for name in CATEGORIES:
        lines.append(f"    {name:<30} {b['ms_per_unit'][name]:8.2f} ms  {100 * b['share'][name]:5.1f}%")
    return lines
