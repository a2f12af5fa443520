"""Attention maps: which source tokens each output token looked at, as a matrix and a heatmap.

The sentence is translated first (the checkpoint's beam unless told otherwise); the weights
then come from one teacher-forced `forward` over [BOS] + output tokens with `record=True`,
which computes exactly what step-by-step decoding computed.
T = output length (EOS included), S = source length (EOS included), h = heads.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from mt.data import pad_sources
from mt.errors import MTError
from mt.vocab import BOS, EOS, SPECIALS

EOS_TOKEN = SPECIALS[EOS]
# families with Japanese glyphs, best first; matplotlib-fontja (the `plot` extra) ships IPAexGothic
CJK_FAMILIES = ("Noto Sans CJK JP", "Noto Sans JP", "Source Han Sans JP", "IPAexGothic", "IPAGothic",
                "TakaoGothic", "VL Gothic", "Hiragino Sans", "Yu Gothic", "MS Gothic", "Noto Sans CJK SC")
FONT_HINT = ("no font with Japanese glyphs found: labels may show as boxes "
             "(pip install matplotlib-fontja, or apt-get install fonts-noto-cjk or fonts-ipaexfont)")


def _modules(model: nn.Module, layer: int | None, head: int | str, kind: str) -> tuple[nn.Module, int, int]:
    """The attention module to record, with the 1-based layer it sits in and the layer count."""
    if kind not in ("cross", "self"):
        raise MTError(f"attention kind must be cross or self, got {kind!r}")
    n = model.attention_layers()
    if n == 0:
        raise MTError("this model has no attention (a seq2seq run trained with attention = \"none\")")
    if kind == "self" and model.attention_module(n, "self") is None:
        raise MTError("the RNN decoder has no self-attention; leave out --self-attention")
    if n == 1 and model.attention_module(1, "self") is None and (layer not in (None, 1) or head not in ("mean", 1)):
        raise MTError("the RNN has a single attention: --layer and --head do not apply")
    layer = n if layer is None else layer
    if not 1 <= layer <= n:
        raise MTError(f"layer must be 1..{n} (decoder layers, 1 = nearest the embeddings), got {layer}")
    module = model.attention_module(layer, kind)
    if head != "mean" and not (isinstance(head, int) and 1 <= head <= module.n_heads):
        raise MTError(f"head must be 1..{module.n_heads} or mean, got {head!r}")
    return module, layer, n


@torch.no_grad()
def attention_matrix(translator, sentence: str, layer: int | None = None, head: int | str = "mean",
                     kind: str = "cross", beam: int | None = None) -> tuple[list[str], list[str], Tensor]:
    """Translate `sentence`; return (column tokens, output tokens, weights (T, columns)).

    Columns are the source tokens (S, with </s>) for kind="cross" and the decoder inputs
    (<s> + output, T) for kind="self". layer and head are 1-based (layer None = the last
    decoder layer; head "mean" = the average over heads).
    """
    model = translator.model
    module, _, _ = _modules(model, layer, head, kind)
    ids, _ = translator.source_ids(sentence)
    if not ids:
        raise MTError("nothing to translate: the sentence is empty")
    src_tokens = translator.source_tokens(sentence)[: len(ids)] + [EOS_TOKEN]
    hyps = translator.translate_ids([ids], beam=beam)[0]
    out_ids = hyps[0].tokens if hyps else []
    out_tokens = [translator.tgt_vocab.itos[i] for i in out_ids] + [EOS_TOKEN]
    src, src_len = pad_sources([ids])  # (1, S): ids + EOS
    tgt_in = torch.tensor([[BOS, *out_ids]])  # (1, T)
    module.record = True
    try:
        model(src.to(translator.device), src_len.to(translator.device), tgt_in.to(translator.device))
        weights = module.weights.float().cpu()[0]  # (h, T, S) or, for the RNN, (T, S)
    finally:
        module.record, module.weights = False, None
    if weights.dim() == 3:
        weights = weights.mean(0) if head == "mean" else weights[head - 1]  # (T, S)
    columns = src_tokens if kind == "cross" else [SPECIALS[BOS], *out_tokens[:-1]]
    return columns, out_tokens, weights


def cjk_font() -> str | None:
    """Family name of an installed font with Japanese glyphs (registering matplotlib-fontja's), or None."""
    import matplotlib  # lazy: an optional extra (mt-enja[plot]), slow to import
    from matplotlib import font_manager

    for name in CJK_FAMILIES:
        try:
            font_manager.findfont(font_manager.FontProperties(family=name), fallback_to_default=False)
            return name
        except ValueError:
            continue
    try:
        with matplotlib.rc_context():  # importing it changes the global font; keep that local
            import matplotlib_fontja
        path = matplotlib_fontja.get_font_ttf_path()
    except (ImportError, AttributeError):
        return None
    font_manager.fontManager.addfont(path)
    return font_manager.FontProperties(fname=path).get_name()


def plot_attention(src_tokens: list[str], out_tokens: list[str], matrix: Tensor, out: Path, title: str,
                   warn: Callable[[str], None] | None = None, xlabel: str = "source (English)") -> Path:
    """Heatmap of `matrix` (rows: output tokens, columns: `src_tokens`) with a colour bar, saved as PNG."""
    import matplotlib  # lazy: an optional extra (mt-enja[plot]), slow to import

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    font = cjk_font()
    if font is None and warn is not None:
        warn(FONT_HINT)
    family = [font, "DejaVu Sans"] if font else ["DejaVu Sans"]
    T, S = matrix.shape
    fig, ax = plt.subplots(figsize=(min(max(5.0, 2.5 + 0.38 * S), 30), min(max(3.5, 2.0 + 0.38 * T), 30)))
    image = ax.imshow(matrix.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(S), src_tokens, rotation=90, fontfamily=family)
    ax.set_yticks(range(T), out_tokens, fontfamily=family)
    ax.set_xlabel(xlabel, fontfamily=family)
    ax.set_ylabel("output (Japanese)", fontfamily=family)
    ax.set_title(title, fontsize=9, fontfamily=family)
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="attention weight")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # without a CJK font every glyph would warn; `warn` said it once
        warnings.filterwarnings("ignore", message="Glyph .* missing from")
        fig.tight_layout()
        fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def describe(translator, checkpoint: Path, layer: int | None, head: int | str, kind: str) -> str:
    """Plot title: run and checkpoint, which attention, layer and head."""
    _, layer_no, n = _modules(translator.model, layer, head, kind)
    run = f"{checkpoint.parent.name}/{checkpoint.stem}"
    module = translator.model.attention_module(layer_no, kind)
    if translator.model.attention_module(layer_no, "self") is None:  # the RNN's one attention
        return f"{run}\nRNN {module.kind} attention"
    what = "encoder–decoder attention" if kind == "cross" else "decoder self-attention"
    return f"{run}\n{what}, decoder layer {layer_no}/{n}, head {head}"


def draw_attention(translator, checkpoint: Path, sentence: str, out: Path, layer: int | None = None,
                   head: int | str = "mean", kind: str = "cross", beam: int | None = None,
                   warn: Callable[[str], None] | None = None) -> tuple[Path, Tensor]:
    """Translate, extract one attention map and write its heatmap; returns the PNG path and matrix."""
    title = describe(translator, Path(checkpoint), layer, head, kind)
    columns, out_tokens, matrix = attention_matrix(translator, sentence, layer, head, kind, beam)
    xlabel = "source (English)" if kind == "cross" else "earlier output (decoder input)"
    return plot_attention(columns, out_tokens, matrix, out, title, warn, xlabel), matrix
