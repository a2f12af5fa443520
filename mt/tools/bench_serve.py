"""`mt bench serve`: `mt serve` under load, with cross-request batching on and off, and a soak with bad input.

The server runs as its own process (`mt serve`), started once per setting; the clients are threads of this
process, each sending single sentences from a test set one request after another. Load: sentences/s and
p50/p99 latency at each client count. Soak: many good requests interleaved with bad ones (invalid JSON, empty
and oversized bodies, wrong types, binary) and connections opened and dropped; every good answer is checked
against the translation of its sentence, every bad one for its status; the server's RSS at start and end and
any traceback in its log are reported. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mt.errors import MTError
from mt.evaluate import eval_set
from mt.tools.bench import machine

BAD = [(b'{"text": "I am', 400), (b"", 400), (b'{"text": 42}', 400), (b'{"text": ["a", 1]}', 400),
       (b"\xff\xfe\x00\x01binary", 400), (json.dumps({"text": "a" * 1500}).encode(), 413),
       (json.dumps({"text": ["Hi."] * 100}).encode(), 413), (b'{"text": "x", "beam": "k"}', 400)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`mt serve` in a subprocess on a free localhost port; its stderr goes to a log file."""

    def __init__(self, checkpoint: Path, beam: int, batching: bool, threads: int) -> None:
        self.port = _free_port()
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        args = [sys.executable, "-m", "mt", "serve", "--checkpoint", str(checkpoint), "--port", str(self.port),
                "--beam", str(beam), "--queue-size", "1024"] + ([] if batching else ["--no-batching"])
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise MTError(f"mt serve exited: {Path(self.log.name).read_text()[-500:]}")
            try:
                if request(self.port, "GET", "/health")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise MTError("mt serve did not start within 120 s")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> str:
        self.proc.terminate()
        self.proc.wait(30)
        return Path(self.log.name).read_text()


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        return response.status, json.loads(data) if data else {}
    finally:
        conn.close()


def _translate(port: int, sentence: str) -> tuple[float, str]:
    start = time.perf_counter()
    status, body = request(port, "POST", "/translate", json.dumps({"text": sentence}).encode())
    if status != 200:
        raise MTError(f"the server answered {status}: {body}")
    return time.perf_counter() - start, body["translations"][0]


def load(port: int, sentences: list[str], clients: int, per_client: int) -> dict:
    """`clients` threads, each sending `per_client` single-sentence requests in turn."""
    def client(k: int) -> list[float]:
        return [_translate(port, sentences[(k * per_client + i) % len(sentences)])[0] for i in range(per_client)]

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = sorted(x for part in pool.map(client, range(clients)) for x in part)
    wall = time.perf_counter() - start
    return {"clients": clients, "requests": len(latencies), "sentences_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(1000 * statistics.median(latencies), 1),
            "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1)}


def bench_serve(checkpoint: Path, clients: list[int], per_client: int, beam: int = 1, threads: int = 2,
                log=lambda _msg: None) -> dict:
    """The load benchmark: every client count with cross-request batching on, then off, side by side."""
    sentences = [s for s in eval_set(checkpoint).src.read_text(encoding="utf-8").splitlines() if s.strip()]
    record = {"machine": machine(), "checkpoint": str(checkpoint), "beam": beam, "threads": threads, "rows": []}
    for batching in (True, False):
        server = Server(checkpoint, beam, batching, threads)
        try:
            for n in clients:
                log(f"{n} clients, batching {'on' if batching else 'off'}")
                record["rows"].append({"batching": batching, **load(server.port, sentences, n, per_client)})
        finally:
            server.stop()
    return record


def soak(checkpoint: Path, total: int, clients: int = 8, dropped: int = 200, threads: int = 2,
         log=lambda _msg: None) -> dict:
    """`total` requests, one in five bad, from `clients` threads, plus `dropped` connections opened and dropped."""
    sentences = [s for s in eval_set(checkpoint).src.read_text(encoding="utf-8").splitlines() if s.strip()]
    server = Server(checkpoint, 1, True, threads)
    try:
        expected = {s: _translate(server.port, s)[1] for s in sentences}  # each sentence alone, first
        rss_start = server.rss_mb()
        counts: Counter = Counter()
        lock = threading.Lock()

        def client(k: int) -> None:
            rnd = random.Random(k)
            for i in range(total // clients):
                if rnd.random() < 0.2:
                    body, want = rnd.choice(BAD)
                    got = request(server.port, "POST", "/translate", body)[0]
                    key = "bad answered with its status" if got == want else f"bad answered {got}, expected {want}"
                else:
                    sentence = sentences[(k * 7919 + i) % len(sentences)]
                    ok = _translate(server.port, sentence)[1] == expected[sentence]
                    key = "good answered correctly" if ok else "good answered WRONGLY"
                with lock:
                    counts[key] += 1

        def drop() -> None:  # all open at once, each a request cut short, then all dropped
            sockets = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(dropped)]
            for s in sockets:
                s.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"te")
            time.sleep(0.5)
            for s in sockets:
                s.close()

        log(f"soak: {total} requests from {clients} clients, {dropped} dropped connections")
        with ThreadPoolExecutor(clients + 4) as pool:
            futures = [pool.submit(client, k) for k in range(clients)] + [pool.submit(drop)]
            for f in futures:
                f.result()
        time.sleep(1.0)
        rss_end = server.rss_mb()
        alive = request(server.port, "GET", "/health")[0] == 200
    finally:
        server_log = server.stop()
    return {"machine": machine(), "checkpoint": str(checkpoint), "requests": sum(counts.values()),
            "dropped_connections": dropped, "outcomes": dict(counts), "rss_start_mb": round(rss_start, 1),
            "rss_end_mb": round(rss_end, 1), "alive_after": alive, "tracebacks_in_log": server_log.count("Traceback")}


def format_serve(record: dict) -> list[str]:
    if "rows" not in record:
        lines = [f"soak: {record['requests']} requests + {record['dropped_connections']} dropped connections"]
        lines += [f"  {k}: {v}" for k, v in sorted(record["outcomes"].items())]
        return lines + [f"  server RSS {record['rss_start_mb']} MB at start, {record['rss_end_mb']} MB at end; "
                        f"serving after: {record['alive_after']}; tracebacks in its log: {record['tracebacks_in_log']}"]
    lines = [f"{'batching':8s}  {'clients':>7s}  {'sent/s':>7s}  {'p50 ms':>7s}  {'p99 ms':>7s}"]
    for r in record["rows"]:
        lines.append(f"{'on' if r['batching'] else 'off':8s}  {r['clients']:7d}  {r['sentences_per_s']:7.1f}  "
                     f"{r['p50_ms']:7.1f}  {r['p99_ms']:7.1f}")
    return lines
