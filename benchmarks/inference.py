"""Inference speed: ``Network.predict`` on 10,000 images, and the web page's /api/predict.

    python benchmarks/inference.py [--requests 1000] [--repeats 20]

- ``predict``: the 784-128-64-10 network (trained one epoch on the bundled sample)
  classifies 10,000 uint8 images (the sample's 2,000 test digits, tiled), ``--repeats``
  times, with BLAS's default thread count and with one thread; the median gives
  images per second.
- ``/api/predict``: the page's server (:func:`numpynn.web.make_server`, the same
  network) runs in its own process on 127.0.0.1; one client posts ``--requests``
  drawings one after another on one kept-alive connection (real test digits drawn on
  a 280x280 canvas, as the page sends them). Latency is measured by the client (send
  to last byte of the answer) and by the server itself (request read, decoded,
  predicted with the hidden layers and the saliency, answer written).

All traffic stays on 127.0.0.1; the run ends by itself. Timings are reported, never
asserted.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SERVER = r"""
import sys, time
from numpynn import load
from numpynn.web import http as web_http, make_server

dispatch = web_http.Handler.do_POST

def timed(self):  # the server's own time for each request: read, predict, answer written
    started = time.perf_counter()
    try:
        dispatch(self)
    finally:
        if self.path == "/api/predict":
            print(f"server-seconds {time.perf_counter() - started:.6f}", file=sys.stderr, flush=True)

web_http.Handler.do_POST = timed
server = make_server(load(sys.argv[1]), "127.0.0.1", 0, source="benchmark")
print(server.port, flush=True)
try:
    server.serve_forever()
finally:
    server.shutdown()
"""


def trained_network():
    """784-128-64-10 after one epoch of the default recipe on the bundled sample."""
    from numpynn import datasets, models, recipes

    data = datasets.load("mnist-sample")
    recipe = recipes.default_recipe(data.n_train)
    recipe.epochs = 1
    net, _ = recipes.train_classifier(data, models.mlp(), recipe, progress=False)
    return net, data


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def predict_speed(net, data, repeats: int, threads: int | None, rows: int = 10_000) -> dict[str, float]:
    """Seconds for ``net.predict`` of ``rows`` uint8 images: median and fastest of ``repeats``,
    with BLAS limited to ``threads`` (None: its default)."""
    import contextlib

    x = data.x_test[np.arange(rows) % data.x_test.shape[0]]
    limit: Any = contextlib.nullcontext()
    if threads is not None:
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(limits=threads, user_api="blas")
    with limit:
        net.predict(x)  # warm up
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            net.predict(x)
            times.append(time.perf_counter() - started)
    median = float(np.median(times))
    return {"rows": rows, "median": median, "fastest": min(times), "per_second": rows / median}


def blas_threads() -> int:
    """The BLAS thread count NumPy uses when nothing limits it."""
    from threadpoolctl import threadpool_info

    counts = [int(d["num_threads"]) for d in threadpool_info() if d.get("user_api") == "blas"]
    return max(counts, default=1)


def api_latency(net, requests: int, warmup: int = 20) -> dict[str, float]:
    """Client- and server-side seconds of ``requests`` sequential POSTs to /api/predict."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from web_load import drawings

    bodies, _ = drawings(100)
    with tempfile.TemporaryDirectory() as folder:
        model = Path(folder) / "model.safetensors"
        net.save(str(model))
        server = subprocess.Popen([sys.executable, "-c", SERVER, str(model)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            port = int(server.stdout.readline())
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            client: list[float] = []
            for i in range(warmup + requests):
                started = time.perf_counter()
                conn.request("POST", "/api/predict", bodies[i % len(bodies)],
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                body = resp.read()
                if resp.status != 200 or "digit" not in json.loads(body):
                    raise RuntimeError(f"/api/predict answered {resp.status}: {body[:200]!r}")
                if i >= warmup:
                    client.append(time.perf_counter() - started)
            conn.close()
        finally:
            server.terminate()
            _, err = server.communicate(timeout=30)
    server_side = [float(line.split()[1]) for line in err.splitlines() if line.startswith("server-seconds")]
    server_side = server_side[warmup:]
    return {
        "requests": len(client),
        "client_median": float(np.median(client)), "client_p99": percentile(client, 99),
        "client_max": max(client),
        "server_median": float(np.median(server_side)), "server_p99": percentile(server_side, 99),
        "server_max": max(server_side),
    }


def report(net, data, requests: int, repeats: int) -> list[str]:
    """The two measurements as lines of text."""
    ms = 1e3
    lines = [f"Network.predict, 10,000 uint8 images (784-128-64-10, float32, inference batches of "
             f"{net.inference_batch:,}), {repeats} times:"]
    for threads in (None, 1):
        p = predict_speed(net, data, repeats, threads)
        label = f"{blas_threads()} BLAS threads (the default)" if threads is None else "1 BLAS thread"
        lines.append(f"  {label}: median {p['median'] * ms:.1f} ms, fastest {p['fastest'] * ms:.1f} ms: "
                     f"{p['per_second']:,.0f} images/s")
    a = api_latency(net, requests)
    return lines + [
        f"/api/predict, {a['requests']:,} requests one after another from a client on 127.0.0.1 "
        "(a 280x280 PNG drawing each; answer with probabilities, hidden layers and saliency):",
        f"  client: median {a['client_median'] * ms:.2f} ms, 99th percentile {a['client_p99'] * ms:.2f} ms, "
        f"max {a['client_max'] * ms:.2f} ms",
        f"  server: median {a['server_median'] * ms:.2f} ms, 99th percentile {a['server_p99'] * ms:.2f} ms, "
        f"max {a['server_max'] * ms:.2f} ms",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--requests", type=int, default=1000, help="POSTs to /api/predict (default 1000)")
    p.add_argument("--repeats", type=int, default=20, help="predict calls on 10,000 images (default 20)")
    args = p.parse_args(argv)
    if args.requests < 1 or args.repeats < 1:
        p.error("--requests and --repeats must be at least 1")
    net, data = trained_network()
    print("\n".join(report(net, data, args.requests, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
