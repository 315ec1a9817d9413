"""The web page under load: concurrent clients drawing while "watch it learn" trains.

    python benchmarks/web_load.py                      # 16 clients for 30 s (the default)
    python benchmarks/web_load.py --clients 4 --seconds 3

The server (``numpynn serve`` with the model from ``numpynn.models.mlp`` trained
briefly) runs in its own process on 127.0.0.1, as a user's would. This process
plays the clients, each a thread posting drawings (real test digits drawn big on
a 280x280 canvas, as the page sends them) one after another, while one more
client keeps a "watch it learn" job running all the time (it starts the next as
soon as one ends) and polls its status twice a second, as the page does.

Reported: requests, failures (anything but a 200 with a well-formed answer),
wrong answers, median and 99th-percentile latency of /api/predict, and the
server's memory (resident set size) over the run. An answer is right when it
equals what the network of its generation says for that drawing, computed here
from the same network: the server saves each network it switches to (first
the model, then each one "watch it learn" trains) for this check.

Exit status 1 on any failure or wrong answer, so a smoke run can be a test; the
timings are reported, never asserted. All traffic stays on 127.0.0.1 and the run
ends by itself after ``--seconds``.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

SERVER = r"""
import sys
from numpynn import datasets, load
from numpynn.recipes import Recipe
from numpynn.web import make_server
from numpynn.web.api import App

folder = sys.argv[1]
original = App.set_network

def set_network(self, net, source):  # keep each network the page uses, for the check
    original(self, net, source)
    net.save(f"{folder}/generation-{self.generation}.safetensors")

App.set_network = set_network
if len(sys.argv) > 2:  # --python-memory: the Python heap (tracemalloc, numpy arrays included), every second
    import threading, time, tracemalloc
    tracemalloc.start()

    def report():
        while True:
            time.sleep(1)
            print(f"python-heap {tracemalloc.get_traced_memory()[0]}", file=sys.stderr, flush=True)

    threading.Thread(target=report, daemon=True).start()
data = datasets.load("mnist-sample")
server = make_server(load(f"{folder}/model.safetensors"), "127.0.0.1", 0, source="benchmark",
                     train_data=data, train_recipe=Recipe(epochs=3, shift=1))
print(server.port, flush=True)
try:
    server.serve_forever()
finally:
    server.shutdown()
"""


def rss_kib(pid: int) -> int:
    """Resident set size of a process, in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def drawings(count: int) -> tuple[list[bytes], np.ndarray]:
    """Real test digits as the page sends them: a 280x280 PNG data URL in JSON."""
    from PIL import Image

    from numpynn import datasets

    data = datasets.load("mnist-sample")
    bodies, pixels = [], []
    for digit in data.x_test[:count]:
        img = Image.fromarray(digit.reshape(28, 28)).resize((280, 280), Image.Resampling.BILINEAR)
        buf = io.BytesIO()
        img.convert("RGBA").save(buf, format="PNG")
        url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
        bodies.append(json.dumps({"png": url}).encode())
        pixels.append(digit)
    return bodies, np.array(pixels)


class Client(threading.Thread):
    def __init__(self, port: int, bodies: list[bytes], stop: threading.Event, seed: int) -> None:
        super().__init__(daemon=True)
        self.port, self.bodies, self.stop = port, bodies, stop
        self.rng = np.random.default_rng(seed)
        self.latencies: list[float] = []
        self.answers: list[tuple[int, int, list[float]]] = []  # (drawing, generation, probabilities)
        self.failures: list[str] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while not self.stop.is_set():
            i = int(self.rng.integers(len(self.bodies)))
            started = time.perf_counter()
            try:
                conn.request("POST", "/api/predict", self.bodies[i], {"Content-Type": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as e:
                self.failures.append(f"/api/predict: {type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                continue
            self.latencies.append(time.perf_counter() - started)
            if resp.status != 200:
                self.failures.append(f"HTTP {resp.status}: {body[:200]!r}")
                continue
            answer = json.loads(body)
            self.answers.append((i, answer["model"]["generation"], answer["probabilities"]))
        conn.close()


class Teacher(threading.Thread):
    """Keeps "watch it learn" running and polls its status, as the page does."""

    def __init__(self, port: int, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.stop = port, stop
        self.jobs = 0
        self.failures: list[str] = []

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body, {"Content-Type": "application/json"} if body else {})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        finally:
            conn.close()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                status, state = self.call("GET", "/api/train/status")
                if status != 200:
                    self.failures.append(f"status: HTTP {status}")
                elif state["state"] != "running":
                    status, _ = self.call("POST", "/api/train", b"{}")
                    if status == 202:
                        self.jobs += 1
                    elif status != 409:
                        self.failures.append(f"train: HTTP {status}")
            except (OSError, http.client.HTTPException, ValueError) as e:
                self.failures.append(f"watch it learn: {type(e).__name__}: {e}")
            self.stop.wait(0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--python-memory", action="store_true",
                        help="also trace the server's Python heap (tracemalloc: slower, but a leak of Python "
                             "objects or arrays shows here, apart from the allocator's own habits)")
    args = parser.parse_args(argv)

    from numpynn import load
    from numpynn.models import mlp
    from numpynn.recipes import Recipe, train_classifier

    bodies, _ = drawings(50)
    with tempfile.TemporaryDirectory(prefix="numpynn-web-load-") as folder:
        from numpynn import datasets

        net, _ = train_classifier(datasets.load("mnist-sample"), mlp(seed=0), Recipe(epochs=2, shift=0),
                                  progress=False)
        net.save(f"{folder}/model.safetensors")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
        trace = ["trace"] if args.python_memory else []
        server = subprocess.Popen([sys.executable, "-c", SERVER, folder, *trace], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            stop = threading.Event()
            clients = [Client(port, bodies, stop, seed) for seed in range(args.clients)]
            teacher = Teacher(port, stop)
            memory: list[tuple[float, int]] = []
            started = time.monotonic()
            for thread in (teacher, *clients):
                thread.start()
            while (elapsed := time.monotonic() - started) < args.seconds:
                memory.append((elapsed, rss_kib(server.pid)))
                time.sleep(min(1.0, max(0.0, args.seconds - elapsed)))
            memory.append((time.monotonic() - started, rss_kib(server.pid)))
            stop.set()
            for thread in (teacher, *clients):
                thread.join(60)
        finally:
            server.terminate()
            _, server_log = server.communicate(timeout=30)
        generations = {int(p.stem.split("-")[1]): load(str(p)) for p in Path(folder).glob("generation-*")}

    answers = [a for c in clients for a in c.answers]
    failures = [f for c in clients for f in c.failures] + teacher.failures
    latencies = sorted(t for c in clients for t in c.latencies)
    wrong = 0
    expected: dict[tuple[int, int], np.ndarray] = {}
    from numpynn.images import preprocess

    for i, generation, probabilities in answers:
        key = (i, generation)
        if key not in expected:  # the network's own predict, on the drawing as numpynn predict reads it
            png = base64.b64decode(json.loads(bodies[i])["png"].split(",", 1)[1])
            net = generations[generation].copy("float64")
            expected[key] = net.predict(preprocess(png).reshape(1, *net.input_shape))[0]
        if not np.allclose(probabilities, expected[key], rtol=0, atol=1e-5):
            wrong += 1
    p50, p99 = (np.percentile(latencies, q) * 1000 for q in (50, 99)) if latencies else (0.0, 0.0)
    settled = [kib for t, kib in memory if t >= min(5.0, args.seconds / 3)]
    print(f"{args.clients} clients for {args.seconds:g} s, while \"watch it learn\" ran {teacher.jobs} jobs "
          f"({len(generations)} networks in turn)")
    print(f"requests: {len(latencies):,} to /api/predict ({len(latencies) / args.seconds:.1f}/s), "
          f"failures {len(failures)}, wrong answers {wrong}")
    print(f"latency: median {p50:.1f} ms, 99th percentile {p99:.1f} ms, max "
          f"{(latencies[-1] if latencies else 0) * 1000:.1f} ms")
    if settled:
        first, last, peak = settled[0] / 1024, settled[-1] / 1024, max(settled) / 1024
        third = max(1, len(settled) // 3)
        early, late = np.mean(settled[:third]) / 1024, np.mean(settled[-third:]) / 1024
        print(f"server memory (RSS): {memory[0][1] / 1024:.0f} MiB at the start, {first:.0f} MiB once busy, "
              f"{last:.0f} MiB at the end (peak {peak:.0f} MiB); busy run's first third {early:.0f} MiB on "
              f"average, last third {late:.0f} MiB; every second: "
              + " ".join(f"{kib / 1024:.0f}" for _, kib in memory))
    heap = [int(line.split()[1]) / 2**20 for line in server_log.splitlines()
            if line.startswith("python-heap")]
    if heap:
        third = max(1, len(heap) // 3)
        print(f"server's Python heap: first third {np.mean(heap[:third]):.1f} MiB on average, last third "
              f"{np.mean(heap[-third:]):.1f} MiB; every second: " + " ".join(f"{h:.0f}" for h in heap))
    for line in failures[:10]:
        print(f"  failure: {line}")
    if "Traceback" in server_log:
        print("the server's log holds a traceback:\n" + server_log[-3000:])
        failures.append("traceback")
    return 1 if failures or wrong or not latencies else 0


if __name__ == "__main__":
    sys.exit(main())
