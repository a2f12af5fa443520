"""Batch-first decoding states: select, drop and repeat hypotheses without knowing the model.

A State is a dataclass whose tensors (or lists of tensors) have the batch on dim 0. Fields made
with `per_sentence()` hold one row per sentence, shared by that sentence's `group` hypotheses
(e.g. the Transformer's encoder keys/values, the same for all K beams); every other tensor holds
one row per hypothesis. A State with per-sentence fields has an int field `group`. A field made with `members()` holds
other States (an ensemble's, one per model), each reordered and expanded by its own rules.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch


def per_sentence(**kwargs: Any) -> Any:
    """A State field holding one row per sentence, shared by that sentence's `group` hypotheses."""
    return dataclasses.field(metadata={"per_sentence": True}, **kwargs)


def members(**kwargs: Any) -> Any:
    """A State field holding a list of other States (an ensemble's members)."""
    return dataclasses.field(metadata={"members": True}, **kwargs)


def _is_tensors(value: Any) -> bool:
    return isinstance(value, torch.Tensor) or (isinstance(value, list) and bool(value)
                                               and isinstance(value[0], torch.Tensor))


def _select(value: Any, index: torch.Tensor) -> Any:
    if isinstance(value, torch.Tensor):
        return value.index_select(0, index)
    if _is_tensors(value):
        return [v.index_select(0, index) for v in value]
    return value


def reorder_state(state: Any, index: torch.Tensor) -> Any:
    """Select rows `index` of every tensor in a batch-first State (lists of tensors too).

    Per-sentence fields follow the sentences of the selected hypotheses; with group G > 1 the index
    must keep each sentence's hypotheses together in blocks of G (as beam search does)."""
    group = getattr(state, "group", 1)
    sentences = index if group == 1 else index[::group] // group
    changes = {}
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if f.metadata.get("members"):
            changes[f.name] = [reorder_state(m, index) for m in value]
        else:
            changes[f.name] = _select(value, sentences if f.metadata.get("per_sentence") else index)
    return dataclasses.replace(state, **changes)


def expand_state(state: Any, k: int) -> Any:
    """Repeat every hypothesis k times (beam search's start); per-sentence fields stay as they are."""
    changes = {f.name: [expand_state(m, k) for m in getattr(state, f.name)]
               for f in dataclasses.fields(state) if f.metadata.get("members")}
    fields = [f.name for f in dataclasses.fields(state) if not f.metadata]
    tensors = [v if isinstance(v, torch.Tensor) else v[0] for v in (getattr(state, n) for n in fields) if _is_tensors(v)]
    if tensors:
        index = torch.arange(tensors[0].size(0), device=tensors[0].device).repeat_interleave(k)  # (hypotheses,)
        changes.update({n: _select(getattr(state, n), index) for n in fields})
    if hasattr(state, "group"):
        changes["group"] = state.group * k
    return dataclasses.replace(state, **changes)
