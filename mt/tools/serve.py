"""`mt serve`: an HTTP translation server and a web page (FastAPI + uvicorn; `pip install 'mt-enja[serve]'`).

The model is loaded once. Concurrent requests are batched across users: one inference worker takes
whatever is queued (up to --max-batch-sentences sentences, waiting at most --max-wait-ms for more),
translates it as one batch and answers each request its own lines; a sentence's translation does not
depend on its batch mates (the models are batch-invariant). Preprocessing and postprocessing are
exactly `mt translate`'s (translate_lines): each text is split into sentences, an over-long sentence cut at
clause punctuation into pieces, and their translations joined; the response's "notes" say where a text was
cut. `"split": false` in a request (or `mt serve --no-split`) translates each text whole, and then a text
over the model's token limit is refused (413) rather than truncated. Each translation comes with its
`mt check` flags (mt/checks.py: untranslated, number, repeat, short, unknown; dropped with --dropped; readback where
the run reranks with a reverse model); the page shows them as a warning.

Limits answer with a status, never a silent truncation: the body size (413), sentences per request and
characters or tokens per sentence (413, naming the limit), a full queue (503 + Retry-After), a request
that waited too long (504); malformed JSON, JSON nested too deeply, or wrong types (400). The server keeps serving after each.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.requests import ClientDisconnect

from mt import check_model, checks
from mt.checks import Checker
from mt.errors import MTError
from mt.sentences import split_sentences
from mt.tools.attention_plot import attention_matrix
from mt.translate import LineTranslation, Translator, translate_lines

PAGE = Path(__file__).resolve().parent / "static" / "index.html"


@dataclass(frozen=True)
class Limits:
    """What one request may ask for, and how the worker batches."""

    max_body_bytes: int = 1_000_000
    max_sentences: int = 64  # per request
    max_chars: int = 1000  # per sentence
    max_beam: int = 16
    max_nbest: int = 8
    max_batch_sentences: int = 64  # per decoding batch, across requests
    max_wait_ms: float = 5.0  # how long the worker waits for more requests to join a batch
    queue_size: int = 256  # requests waiting; beyond it: 503
    timeout_s: float = 30.0  # per request; beyond it: 504
    batching: bool = True  # False: one request per batch (for `mt bench serve`)
    split: bool = True  # the default of a request's "split": texts translated sentence by sentence


class BadRequest(Exception):
    """A request the server refuses: its HTTP status and one clear message."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


@dataclass
class Job:
    """One request's sentences waiting for the worker; `done` is set from the worker thread."""

    sentences: list[str]
    beam: int
    nbest: int
    split: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    cancelled: bool = False
    queued_at: float = field(default_factory=time.perf_counter)


class Worker:
    """The one inference thread: batches queued jobs with the same beam, n-best and splitting, translates, answers."""

    def __init__(self, translator: Translator, limits: Limits, lock: threading.Lock) -> None:
        self.translator, self.limits, self.lock = translator, limits, lock
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=limits.queue_size)
        self.batches = 0  # decoding batches run (tests read it)
        self.thread = threading.Thread(target=self._run, daemon=True, name="mt-serve-worker")
        self.thread.start()

    def submit(self, job: Job) -> None:
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            raise BadRequest(503, f"the server is busy ({self.limits.queue_size} requests queued); retry shortly",
                             {"Retry-After": "1"}) from None

    def stop(self) -> None:
        self.jobs.put(None)

    def _take(self) -> list[Job] | None:
        first = self.jobs.get()
        if first is None:
            return None
        taken, size = [first], len(first.sentences)
        deadline = time.perf_counter() + self.limits.max_wait_ms / 1000
        while self.limits.batching and size < self.limits.max_batch_sentences:
            try:
                job = self.jobs.get(timeout=max(0.0, deadline - time.perf_counter()))
            except queue.Empty:
                break
            if job is None:
                self.jobs.put(None)
                break
            taken.append(job)
            size += len(job.sentences)
        return taken

    def _run(self) -> None:
        while (taken := self._take()) is not None:
            groups: dict[tuple[int, int, bool], list[Job]] = {}
            for job in taken:
                if not job.cancelled:
                    groups.setdefault((job.beam, job.nbest, job.split), []).append(job)
            for (beam, nbest, split), jobs in groups.items():
                self._translate(jobs, beam, nbest, split)

    def _translate(self, jobs: list[Job], beam: int, nbest: int, split: bool) -> None:
        lines = [s for job in jobs for s in job.sentences]
        try:
            with self.lock:
                outputs = translate_lines(self.translator, lines, beam, nbest, self.limits.max_batch_sentences, split)
            self.batches += 1
        except Exception as e:  # a bug must answer its requests, not stop the worker
            for job in jobs:
                job.loop.call_soon_threadsafe(_settle, job.future, e)
            return
        start = 0
        for job in jobs:
            part = outputs[start: start + len(job.sentences)]
            start += len(job.sentences)
            job.loop.call_soon_threadsafe(_settle, job.future, part)


def _settle(future: asyncio.Future, value: Any) -> None:
    if future.done():  # timed out meanwhile
        return
    if isinstance(value, Exception):
        future.set_exception(value)
    else:
        future.set_result(value)


def _field(body: dict, name: str, kind: type, default: Any, low: int, high: int) -> Any:
    value = body.get(name, default)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise BadRequest(400, f"'{name}' must be {kind.__name__}, got {type(value).__name__}")
    if not low <= value <= high:
        raise BadRequest(413 if value > high else 400, f"'{name}' must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class Asked:
    """A POST body, checked: the texts, whether "text" was one string, beam, n-best, and sentence splitting."""

    texts: list[str]
    single: bool
    beam: int
    nbest: int
    split: bool


def parse_request(raw: bytes, translator: Translator, limits: Limits) -> Asked:
    """A POST /translate or /attention body → what it asks, or BadRequest."""
    if len(raw) > limits.max_body_bytes:
        raise BadRequest(413, f"request body over {limits.max_body_bytes} bytes")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BadRequest(400, f"the body is not valid UTF-8 JSON: {e}") from None
    except RecursionError:  # the parser recurses per level: [[[[…]]]] thousands deep runs out of stack
        raise BadRequest(400, 'the body nests too deeply to be a request: expected {"text": "…" or ["…", …]}') from None
    if not isinstance(body, dict) or "text" not in body:
        raise BadRequest(400, 'expected a JSON object {"text": "…" or ["…", …], "beam"?: K, "nbest"?: N}')
    text = body["text"]
    single = isinstance(text, str)
    sentences = [text] if single else text
    if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
        raise BadRequest(400, "'text' must be a string or a list of strings")
    if not sentences:
        raise BadRequest(400, "'text' is an empty list")
    if len(sentences) > limits.max_sentences:
        raise BadRequest(413, f"{len(sentences)} sentences in one request; the limit is {limits.max_sentences}")
    split = body.get("split", limits.split)
    if not isinstance(split, bool):
        raise BadRequest(400, f"'split' must be true or false, got {type(split).__name__}")
    for i, s in enumerate(sentences):
        if len(s) > limits.max_chars:
            raise BadRequest(413, f"sentence {i + 1} has {len(s)} characters; the limit is {limits.max_chars}")
        if not split and s.strip() and translator.source_ids(s)[1]:
            raise BadRequest(413, f"sentence {i + 1} is longer than {translator.source_limit()} tokens, the model's "
                                  f'limit; split it, or send "split": true')
    beam = _field(body, "beam", int, translator.decode.beam, 1, limits.max_beam)
    nbest = _field(body, "nbest", int, 1, 1, limits.max_nbest)
    return Asked(sentences, single, max(beam, nbest), nbest, split)


def response(outputs: list[LineTranslation], nbest: int) -> dict:
    """Translations, scores (lists with n-best > 1) and notes ("text N: …", where a text was cut or truncated)."""
    texts = [[o.text for o in t.outputs] if nbest > 1 else t.outputs[0].text for t in outputs]
    scores = [[round(o.score, 4) for o in t.outputs] if nbest > 1 else round(t.outputs[0].score, 4) for t in outputs]
    notes = [f"text {i}: {note}" for i, t in enumerate(outputs, 1) for note in t.notes]
    return {"translations": texts, "scores": scores, "notes": notes}


def model_info(run_name: str, checkpoint: Path, translator: Translator) -> dict:
    """GET /model: what is loaded, and its test scores where `mt evaluate` wrote them."""
    info: dict[str, Any] = {"model": run_name, "checkpoint": str(checkpoint),
                            "vocab": {"src": len(translator.src_vocab), "tgt": len(translator.tgt_vocab)},
                            "decode": {"beam": translator.decode.beam, "alpha": translator.decode.alpha,
                                       "shortlist": list(translator.decode.shortlist)}}
    config = checkpoint.parent / "config.toml"
    if config.exists():
        info["config"] = config.read_text(encoding="utf-8")
    scores = checkpoint.parent / "eval-test.json"
    if scores.exists():
        ev = json.loads(scores.read_text(encoding="utf-8"))
        info["test"] = {k: ev[k] for k in ("bleu_tok", "bleu_tok_signature", "bleu_ja", "bleu_ja_signature", "chrf")
                        if k in ev}
    return info


def flags_of(checker: Checker, texts: list[str], outputs: list[LineTranslation]) -> list[list[dict]]:
    """Each text's `mt check` flags on its best (joined) translation, as JSON (issue 30)."""
    flags = checks.check_lines(texts, [t.outputs[0].text for t in outputs], checker)
    return [[{"flag": f.name, "detail": f.detail} for f in line] for line in flags]


def create_app(translator: Translator, run_name: str, checkpoint: Path, limits: Limits = Limits(),
               checker: Checker | None = None) -> FastAPI:
    """The FastAPI application: /translate, /attention, /health, /model and the page at /; `checker` flags
    each translation (default: the checkpoint's vocabulary and corpus)."""
    checker = checker or check_model.for_translator(translator, checkpoint)
    app = FastAPI(title="mt", description="English→Japanese translation (mt)", version="1")
    lock = threading.Lock()
    worker = Worker(translator, limits, lock)
    app.state.worker = worker
    info = model_info(run_name, checkpoint, translator)

    @app.exception_handler(BadRequest)
    async def refused(_request: Request, e: BadRequest) -> JSONResponse:
        return JSONResponse({"error": e.message}, status_code=e.status, headers=e.headers)

    @app.post("/translate")
    async def translate(request: Request) -> dict:
        start = time.perf_counter()
        asked = parse_request(await _body(request, limits), translator, limits)
        loop = asyncio.get_running_loop()
        job = Job(asked.texts, asked.beam, asked.nbest, asked.split, loop, loop.create_future())
        worker.submit(job)
        try:
            outputs = await asyncio.wait_for(job.future, limits.timeout_s)
        except TimeoutError:
            job.cancelled = True
            raise BadRequest(504, f"not translated within {limits.timeout_s:g} s; try fewer sentences") from None
        if checker.erasure or checker.reader:  # `dropped`, `readback` run a model: off the event loop, not beside the worker
            def read() -> list[list[dict]]:
                with lock:
                    return flags_of(checker, asked.texts, outputs)
            flags = await asyncio.to_thread(read)
        else:
            flags = flags_of(checker, asked.texts, outputs)
        return {**response(outputs, asked.nbest), "flags": flags[0] if asked.single else flags, "model": run_name,
                "time_ms": round((time.perf_counter() - start) * 1000, 1)}

    @app.post("/attention")
    async def attention(request: Request) -> dict:
        """The translation's cross-attention (last decoder layer, mean over heads): `mt attention`'s data, for
        the first sentence of the (first) text; "sentence" says which."""
        asked = parse_request(await _body(request, limits), translator, limits)
        if translator.model.attention_layers() == 0:
            raise BadRequest(400, "this model has no attention")
        text = (split_sentences(asked.texts[0]) or [""])[0] if asked.split else asked.texts[0]
        if not text.strip():
            raise BadRequest(400, "nothing to translate: the sentence is empty")
        if translator.source_ids(text)[1]:
            raise BadRequest(413, f"the sentence is longer than {translator.source_limit()} tokens, the model's limit")

        def compute() -> tuple[list[str], list[str], Any]:
            with lock:
                return attention_matrix(translator, text, beam=asked.beam)

        try:
            columns, rows, weights = await asyncio.to_thread(compute)
        except MTError as e:
            raise BadRequest(400, str(e)) from None
        return {"sentence": text, "source": columns, "output": rows,
                "weights": [[round(float(w), 4) for w in r] for r in weights]}

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": run_name, "queued": worker.jobs.qsize()}

    @app.get("/model")
    async def model() -> dict:
        return info

    @app.get("/")
    async def page() -> FileResponse:
        return FileResponse(PAGE, media_type="text/html; charset=utf-8")

    return app


async def _body(request: Request, limits: Limits) -> bytes:
    """The body, refused early by its declared length; read in chunks so a lie costs at most the limit."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limits.max_body_bytes:
        raise BadRequest(413, f"request body over {limits.max_body_bytes} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_body_bytes:
                raise BadRequest(413, f"request body over {limits.max_body_bytes} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # the client went away mid-body: nobody to answer, nothing to log
        raise BadRequest(400, "the client disconnected before sending its whole body") from None
    return b"".join(chunks)


class Running:
    """A uvicorn server for `app` on a background thread (tests, `mt bench serve`); port 0 picks a free one."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="mt-serve-http")

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline or not self.thread.is_alive():
                raise MTError("the server did not start")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def serve(translator: Translator, checkpoints: list[Path], host: str, port: int, limits: Limits,
          dropped: bool = False) -> None:
    """`mt serve`: run until interrupted (uvicorn handles Ctrl-C and SIGTERM); an ensemble is named A+B;
    `dropped`: each translation is also checked for source words it ignores (the model reads it again)."""
    name = "+".join(p.parent.name for p in checkpoints)
    checker = check_model.for_translator(translator, checkpoints[0], dropped)
    uvicorn.run(create_app(translator, name, checkpoints[0], limits, checker), host=host, port=port,
                log_level="info")
