"""`mt serve` (mt/tools/serve.py): the API equals `mt translate`, batching across requests, every limit and
error status, a server that keeps serving, and the page in a real (headless) browser."""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from unittest.mock import ANY

import pytest

pytest.importorskip("fastapi", reason="mt serve is an optional extra: pip install 'mt-enja[serve]'")

from mt import experiments  # noqa: E402
from mt.cli import main  # noqa: E402
from mt.tools.serve import Limits, Running, create_app  # noqa: E402
from mt.translate import Translator  # noqa: E402
from tests.helpers import cli_translate, runs_in, train_tiny  # noqa: E402

SENTENCES = ["I am a student.", "Where is the station?", "She likes music very much.", "", "Thank you!"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    with runs_in(tmp_path_factory.mktemp("serve-runs")):
        return train_tiny("transformer", "serve-tf", epochs=8)


def _translator(run: Path) -> Translator:
    return Translator.from_checkpoint(experiments.best_checkpoint(run))


def _server(run: Path, limits: Limits | None = None, translator: Translator | None = None):
    translator = translator or _translator(run)
    app = create_app(translator, run.name, experiments.best_checkpoint(run), limits or Limits())
    return app, Running(app)


def _call(url: str, path: str, body: bytes | dict | None = None, method: str = "POST") -> tuple[int, dict, dict]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(url + path, data=data, method=method if data is not None else "GET",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}"), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}"), dict(e.headers)


def test_api_round_trip_equals_mt_translate(run, monkeypatch, capsys):
    expected = cli_translate(SENTENCES, monkeypatch, capsys, "--run", str(run))
    _, server = _server(run)
    with server as url:
        status, body, _ = _call(url, "/translate", {"text": SENTENCES})
        assert status == 200 and body["translations"] == expected and body["model"] == run.name
        assert len(body["scores"]) == len(SENTENCES) and body["time_ms"] >= 0
        status, single, _ = _call(url, "/translate", {"text": SENTENCES[0]})
        assert single["translations"] == expected[:1]
        status, nbest, _ = _call(url, "/translate", {"text": SENTENCES[:2], "nbest": 3, "beam": 4})
        assert status == 200 and all(1 <= len(n) <= 3 for n in nbest["translations"])
        assert [s == sorted(s, reverse=True) for s in nbest["scores"]] == [True, True]


THREE = "I am a student. Where is the station? Thank you!"
LONG = ", ".join(["I like tea and you like coffee"] * 30) + "."  # 240 tokens in 960 characters: over the model's 200


def test_texts_are_split_into_sentences_as_mt_translate_splits_them(run, monkeypatch, capsys):
    expected = cli_translate([THREE, LONG], monkeypatch, capsys, "--run", str(run))
    translator = _translator(run)
    _, server = _server(run, translator=translator)
    with server as url:
        status, body, _ = _call(url, "/translate", {"text": [THREE, LONG]})
        assert status == 200 and body["translations"] == expected
        assert [n.split(":")[0] for n in body["notes"]] == ["text 2"] and "pieces split at commas" in body["notes"][0]
        status, body, _ = _call(url, "/translate", {"text": [THREE, LONG], "split": False})
        assert status == 413 and "sentence 2 is longer than 200 tokens" in body["error"]
        whole = translator.translate([THREE])[0][0].text
        assert _call(url, "/translate", {"text": THREE, "split": False})[1]["translations"] == [whole]
        status, first, _ = _call(url, "/attention", {"text": THREE})  # the first sentence's
        assert status == 200 and first["sentence"] == "I am a student."
        assert first == _call(url, "/attention", {"text": "I am a student."})[1]
        status, body, _ = _call(url, "/attention", {"text": LONG})
        assert status == 413 and "longer than 200 tokens" in body["error"]
    _, server = _server(run, Limits(split=False), translator)  # mt serve --no-split
    with server as url:
        assert _call(url, "/translate", {"text": THREE})[1]["translations"] == [whole]
        assert _call(url, "/translate", {"text": THREE, "split": True})[1]["translations"] == expected[:1]


def test_concurrent_requests_share_batches_and_get_their_own_lines(run):
    translator = _translator(run)
    alone = {s: translator.translate([s])[0][0].text for s in SENTENCES}
    app, server = _server(run, Limits(max_wait_ms=300), translator)
    with server as url:
        barrier = threading.Barrier(len(SENTENCES))

        def ask(sentence: str) -> str:
            barrier.wait()
            return _call(url, "/translate", {"text": sentence})[1]["translations"][0]

        with ThreadPoolExecutor(len(SENTENCES)) as pool:
            answers = list(pool.map(ask, SENTENCES))
    assert answers == [alone[s] for s in SENTENCES]  # batch invariance: batch mates change nothing
    assert app.state.worker.batches < len(SENTENCES)


BAD = [
    (b'{"text": "I am', 400, "not valid UTF-8 JSON"),
    (b"", 400, "not valid UTF-8 JSON"),
    (b"\xff\xfe\x00binary", 400, "not valid UTF-8 JSON"),
    (b'["I am a student."]', 400, "expected a JSON object"),
    (b'{"txt": "x"}', 400, "expected a JSON object"),
    (b'{"text": 42}', 400, "'text' must be a string or a list of strings"),
    (b'{"text": ["ok", 1]}', 400, "'text' must be a string or a list of strings"),
    (b'{"text": []}', 400, "empty list"),
    (b'{"text": "x", "beam": "five"}', 400, "'beam' must be int"),
    (b'{"text": "x", "beam": 0}', 400, "'beam' must be between 1 and 16"),
    (b'{"text": "x", "beam": 99}', 413, "'beam' must be between 1 and 16"),
    (b'{"text": "x", "nbest": true}', 400, "'nbest' must be int"),
    (json.dumps({"text": ["a."] * 65}).encode(), 413, "the limit is 64"),
    (json.dumps({"text": "a" * 1001}).encode(), 413, "the limit is 1000"),
    (json.dumps({"text": "word " * 60, "split": False}).encode(), 413, "longer than 50 tokens"),
    (b'{"text": "x", "split": "yes"}', 400, "'split' must be true or false"),
    (json.dumps({"text": "x" * 30_000}).encode(), 413, "request body over 20000 bytes"),
]


def test_every_bad_request_gets_its_status_and_the_server_keeps_serving(run):
    translator = _translator(run)
    translator.decode = replace(translator.decode, max_src_len=50)
    _, server = _server(run, Limits(max_body_bytes=20_000), translator)  # small enough to fit socket buffers
    with server as url:
        good = _call(url, "/translate", {"text": "I am a student."})[1]
        for raw, status, message in BAD:
            got, body, _ = _call(url, "/translate", raw)
            assert (got, message in body.get("error", "")) == (status, True), (raw[:40], got, body)
            assert _call(url, "/translate", {"text": "I am a student."})[1]["translations"] == good["translations"]
        assert _call(url, "/health", method="GET")[1]["status"] == "ok"


def _nested(depth: int, inside: bytes = b"1") -> bytes:
    return b"[" * depth + inside + b"]" * depth


DEEP = [  # (body, words of the message): JSON nested deeper than the parser recurses is a 400, not a 500
    (_nested(100_000), "nests too deeply"),
    (b'{"text": ' + _nested(100_000, b'"I am."') + b"}", "nests too deeply"),
    (b'{"text": "x", "beam": ' + _nested(100_000) + b"}", "nests too deeply"),
    (_nested(1_000), ""),  # within the parser's depth or not (Python's stack), a 400 either way
    (b'{"text": ' + _nested(1_000, b'"I am."') + b"}", ""),
    (b'{"text": ' + _nested(2, b'"I am."') + b"}", "'text' must be a string or a list of strings"),
]


def test_deeply_nested_json_is_a_400_without_a_traceback(run, capfd):
    _, server = _server(run)  # the default 1 MB body limit: 100,000 levels fit
    with server as url:
        good = _call(url, "/translate", {"text": "I am a student."})[1]
        for raw, words in DEEP:
            for path in ("/translate", "/attention"):
                status, body, _ = _call(url, path, raw)
                assert status == 400 and body["error"] and words in body["error"], (raw[:20], path, status, body)
            assert _call(url, "/translate", {"text": "I am a student."})[1] == {**good, "time_ms": ANY}
    log = capfd.readouterr().err
    assert "Traceback" not in log and "Exception in ASGI" not in log, log[-2000:]


def test_a_full_queue_is_503_and_a_slow_answer_504(run):
    app, server = _server(run, Limits(queue_size=1, timeout_s=1.0, batching=False))
    with server as url:
        lock = app.state.worker.lock
        with lock:  # the worker is stuck in a batch: one request waits in the queue, the rest find it full
            with ThreadPoolExecutor(5) as pool:
                results = list(pool.map(lambda _: _call(url, "/translate", {"text": "I am a student."}), range(5)))
        statuses = sorted(r[0] for r in results)
        assert 503 in statuses and 504 in statuses, statuses
        busy = next(r for r in results if r[0] == 503)
        assert busy[2].get("retry-after") == "1" or busy[2].get("Retry-After") == "1"
        for _ in range(50):  # and, once the stuck batch is done (Retry-After), it serves again
            if (status := _call(url, "/translate", {"text": "I am a student."})[0]) == 200:
                break
            time.sleep(0.1)
        assert status == 200


def test_health_model_and_page(run):
    assert main(["evaluate", "--run", str(run), "--split", "test"]) == 0
    _, server = _server(run)
    with server as url:
        assert _call(url, "/health", method="GET")[1]["status"] == "ok"
        info = _call(url, "/model", method="GET")[1]
        assert info["model"] == run.name and info["vocab"]["tgt"] > 4 and "bleu_ja" in info["test"]
        with urllib.request.urlopen(url + "/") as r:
            page = r.read().decode()
        assert "Noto Sans CJK JP" in page and "/translate" in page and "http" not in page.split("<script>")[1]
        status, attention, _ = _call(url, "/attention", {"text": "I am a student."})
        assert status == 200 and len(attention["weights"]) == len(attention["output"])
        assert all(len(row) == len(attention["source"]) for row in attention["weights"])
        assert _call(url, "/openapi.json", method="GET")[0] == 200


def test_each_translation_comes_with_its_checks(run):
    """The `mt check` flags of each best translation (issue 30), as the page shows them."""
    from mt import check_model

    translator = _translator(run)
    checker = check_model.for_translator(translator, experiments.best_checkpoint(run))
    sentences = ["I like zyxwvut.", "I am a student.", ""]
    expected = [[{"flag": f.name, "detail": f.detail} for f in checker.check(s, outs[0].text)]
                for s, outs in zip(sentences, translator.translate(sentences))]
    _, server = _server(run, translator=translator)
    with server as url:
        status, body, _ = _call(url, "/translate", {"text": sentences})
        assert status == 200 and body["flags"] == expected and expected[2] == []
        assert {"flag": "unknown", "detail": "zyxwvut"} in body["flags"][0]
        assert _call(url, "/translate", {"text": sentences[0]})[1]["flags"] == expected[0]
        with urllib.request.urlopen(url + "/") as r:
            page = r.read().decode()
        assert 'id="flags"' in page and "drawFlags(data.flags)" in page


def test_serve_dropped_reads_each_translation_with_the_model(run):
    """`mt serve --dropped`: the flags come with `dropped` where the model finds a source word ignored, the same
    flags `mt check --dropped` gives, and the server answers requests after it as before."""
    from mt import check_model, checks

    translator = _translator(run)
    checker = check_model.for_translator(translator, experiments.best_checkpoint(run), dropped=True)
    assert "dropped" in checker.checked()
    sentences = ["I am a student.", "Where is the station?", "She likes music very much."]
    outputs = [o[0].text for o in translator.translate(sentences)]
    expected = [[{"flag": f.name, "detail": f.detail} for f in line]
                for line in checks.check_lines(sentences, outputs, checker)]
    app = create_app(translator, run.name, experiments.best_checkpoint(run), Limits(), checker)
    with Running(app) as url:
        status, body, _ = _call(url, "/translate", {"text": sentences})
        assert status == 200 and body["flags"] == expected
        assert _call(url, "/translate", {"text": "I am a student."})[1]["flags"] == expected[0]


def test_missing_extra_is_one_clear_line(monkeypatch, capsys, run):
    from importlib.util import find_spec

    def never_serve(*args, **kwargs):
        raise AssertionError("the server must not start without its extra")

    monkeypatch.setattr("mt.commands.serve.find_spec", lambda name: None if name == "fastapi" else find_spec(name))
    monkeypatch.setattr("mt.tools.serve.serve", never_serve)
    assert main(["serve", "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'mt-enja[serve]'" in err


CHROMIUM, DRIVER = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")


@pytest.mark.slow  # a headless Chromium
@pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="headless Chromium not installed "
                    "(Debian: apt-get install chromium chromium-driver; .ci/run installs them)")
def test_the_page_in_a_headless_browser(run, tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install 'mt-enja[browser]'")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    expected = _translator(run).translate(["I am a student."])[0][0].text
    _, server = _server(run)
    with server as url:
        browser = webdriver.Chrome(service=webdriver.ChromeService(executable_path=DRIVER), options=options)
        try:
            browser.get(url + "/")
            browser.find_element(By.ID, "source").send_keys("I am a student.")
            wait = WebDriverWait(browser, 30)
            wait.until(lambda b: b.find_element(By.ID, "translation").text.strip())
            assert browser.find_element(By.ID, "translation").text == expected
            wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#heatmap td.cell"))
            assert len(browser.find_elements(By.CSS_SELECTOR, "#nbest li")) >= 1
            assert len(browser.find_elements(By.CSS_SELECTOR, "#heatmap th.src")) >= 3
            browser.save_screenshot(str(tmp_path / "page.png"))
        finally:
            browser.quit()
