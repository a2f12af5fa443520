"""What several commands share, each declared once: the options (model source, device, config, evaluation
set, JSON output) and the CLI's stderr voice. Torch-free, so `mt --help` stays fast."""

from __future__ import annotations

import argparse
import sys

from mt.model_config import CONFIGS

MODELS = sorted(CONFIGS)  # the model families, named once in the core
COMBINE_HELP = ("how an ensemble mixes its members: prob = log of the weighted mean of probabilities (default, "
                "as fairseq), logprob = weighted mean of log-probabilities, renormalized (as OpenNMT-py, Marian)")
ALPHA_HELP = "length penalty α (default: the run's decode.alpha)"


def device(p: argparse.ArgumentParser) -> None:
    """--device."""
    p.add_argument("--device", default="cpu", help="cpu or cuda")


def model_source(p: argparse.ArgumentParser, ensemble: bool = False, with_device: bool = True,
                 ensemble_note: str = "") -> None:
    """--run / --checkpoint: one model, or (ensemble) several, each flag repeated once per model, with
    --weights and --combine; a command taking one model refuses a repeated flag (experiments.resolve_checkpoint)."""
    more = f"; repeat for an ensemble{ensemble_note}" if ensemble else ""
    p.add_argument("--run", action="append", help=f"run name or folder (default: the most recent run){more}")
    p.add_argument("--checkpoint", action="append", help=f"a checkpoint file instead of a run{more}")
    if ensemble:
        p.add_argument("--weights", type=weights, help="ensemble weights, e.g. 0.6,0.4 (default: equal)")
        p.add_argument("--combine", choices=["prob", "logprob"], default="prob", help=COMBINE_HELP)
    if with_device:
        device(p)


def model_config(p: argparse.ArgumentParser, default: str | None = None, config_help: str = "TOML config",
                 corpus: bool = True) -> None:
    """--model, --config (default: experiments/<model>.toml), --corpus, --set: what config.load takes."""
    more = "" if default else " (default: the --config file's model.type, else transformer)"
    p.add_argument("--model", choices=MODELS, default=default, help=f"model family{more}")
    p.add_argument("--config", help=f"{config_help} (default: experiments/<model>.toml)")
    if corpus:
        p.add_argument("--corpus", help="corpus name, folder or TSV file")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one config key, e.g. train.lr=0.001; repeat for more")


def eval_files(p: argparse.ArgumentParser, src_help: str) -> None:
    """--split, or --src/--ref [--ref-tokenized]: what evaluate.eval_set takes."""
    p.add_argument("--split", choices=["dev", "test"], default="test", help="the corpus split to score")
    p.add_argument("--src", help=src_help)
    p.add_argument("--ref", help="reference file")
    p.add_argument("--ref-tokenized", action="store_true", help="the --ref file is space-tokenized")


def json_out(p: argparse.ArgumentParser, what: str = "record") -> None:
    """--json FILE."""
    p.add_argument("--json", help=f"also write the {what} to this JSON file")


def weights(value: str) -> list[float]:
    """0.6,0.4 → [0.6, 0.4]."""
    try:
        return [float(w) for w in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, e.g. 0.6,0.4, got {value!r}") from None


def ints(value: str) -> list[int]:
    """1,4,16 → [1, 4, 16]."""
    try:
        return [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, e.g. 1,4,16, got {value!r}") from None


def note(msg: str) -> None:
    """A progress line on stderr: `mt: ...`."""
    print(f"mt: {msg}", file=sys.stderr, flush=True)


def warn(msg: str) -> None:
    """A warning on stderr: `mt: warning: ...`."""
    print(f"mt: warning: {msg}", file=sys.stderr)


def progress(msg: str) -> None:
    """A training log line on stdout, flushed (it may be piped to a file and followed)."""
    print(msg, flush=True)


SPLIT_HELP = ("translate each line whole, as before sentence splitting (default: sentence by sentence, an over-long "
              "sentence cut at clause punctuation)")


def _non_negative(text: str) -> float:
    """argparse type: a float ≥ 0 (argparse turns the ValueError into one usage error, exit 2)."""
    value = float(text)
    if not value >= 0:
        raise ValueError(text)
    return value


TORCH_OPTIONS = ("dictionary", "coverage", "numbers", "names", "precision", "reverse", "reverse_weight",
                 "patience", "shortlist")  # PyTorch's alone
DECODE_OPTIONS = (*TORCH_OPTIONS, "clauses")


def shortlist(text: str) -> tuple[int, int]:
    """argparse type: FIRST,BEST, two counts ≥ 0 (argparse turns the ValueError into one usage error, exit 2)."""
    first, best = (int(x) for x in text.split(","))
    if first < 0 or best < 0:
        raise ValueError(text)
    return first, best


def decode_options(p: argparse.ArgumentParser) -> None:
    """--dictionary, --coverage, --reverse, --numbers, --names, --precision, --patience and --clauses: what a copied
    unknown word becomes (mt/lexicon.py), the omission defences (mt/coverage.py, mt/reverse.py), whose numbers the
    output says (mt/renumber.py), whether rare names are copied through the model (mt/names.py), the weights'
    precision, when the beam stops (mt/search.py), and which long sentences are translated clause by clause
    (mt/sentences.py)."""
    p.add_argument("--dictionary", choices=["none", "jmdict"],
                   help="look words the model cannot translate up in JMdict (needs mt-enja[dict]), or not "
                        "(default: the run's decode.dictionary)")
    p.add_argument("--coverage", type=_non_negative, metavar="BETA",
                   help="rerank the beam's hypotheses by a coverage penalty of weight BETA, against dropped source "
                        "words (mt/coverage.py; 0: off; default: the run's decode.coverage)")
    p.add_argument("--reverse", metavar="RUN",
                   help="rerank the beam by how well a ja-en model (a run trained with data.direction = \"ja-en\", or "
                        "its checkpoint) gives the source back from each translation, against dropped content "
                        "(mt/reverse.py; '' : off; default: the run's decode.reverse)")
    p.add_argument("--reverse-weight", type=_non_negative, metavar="LAMBDA",
                   help="the reverse model's weight in that reranking (default: the run's decode.reverse_weight)")
    p.add_argument("--numbers", choices=["model", "source"],
                   help="source: an output number that says otherwise than the source (５万 for five thousand) is "
                        "rewritten to the source's; model: kept as decoded (default: the run's decode.numbers)")
    p.add_argument("--names", choices=["model", "source"],
                   help="source: a sentence whose translation lost a rare capitalised name (Mr. Tanaka → 兄) is "
                        "decoded again with the name as <unk>, copied back and written as JMnedict has it with "
                        "--dictionary jmdict; model: as the model translates it (default: the run's decode.names)")
    p.add_argument("--precision", choices=["fp32", "bf16"],
                   help="the weights' precision for decoding: bf16 is faster where the CPU has native bf16 (AVX-512 "
                        "BF16 or AMX) or on a GPU, and falls back to fp32 elsewhere (default: the run's "
                        "decode.precision)")
    p.add_argument("--patience", type=_non_negative, metavar="P",
                   help="end a sentence's beam once ⌈P · beam⌉ hypotheses have finished, as fairseq and CTranslate2 "
                        "do (fewer steps; 0: only when no live hypothesis can beat the finished ones, exact; "
                        "default: the run's decode.patience)")
    p.add_argument("--shortlist", type=shortlist, metavar="FIRST,BEST",
                   help="decode over a target-vocabulary shortlist: the FIRST most frequent target words and each "
                        "source word's BEST likeliest translations (faster; the run's shortlist.safetensors, "
                        "`mt shortlist RUN` builds it for an older run; 0,0: the whole vocabulary; default: the run's "
                        "decode.shortlist)")
    p.add_argument("--clauses", type=int, metavar="WORDS",
                   help="translate a sentence of more than WORDS words clause by clause where it joins clauses "
                        "with ', but' / ', so' / ', and' (joined again by しかし、/ だから、/ そして、; 0: never; "
                        "default: the run's decode.clauses)")


def decode_overrides(args: argparse.Namespace) -> dict:
    """The decode settings a command's flags set (None: the run's own), for Translator.from_checkpoints."""
    names = ("alpha", "beam", *DECODE_OPTIONS)
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
