"""The web page's server (numpynn.web): static files, the JSON API, and its refusals.

A 784-32-10 network trained briefly on 2,000 sample digits serves the requests; each
test talks HTTP to a real server on 127.0.0.1 (port 0) in a background thread.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("PIL")
from PIL import Image  # noqa: E402

import numpynn as nn  # noqa: E402
from numpynn import cli, datasets, images, serialization, web  # noqa: E402
from numpynn.models import mlp  # noqa: E402
from numpynn.recipes import Recipe, train_classifier  # noqa: E402
from numpynn.web import api as web_api  # noqa: E402
from numpynn.web import backprop as web_backprop  # noqa: E402
from numpynn.web import http as web_http  # noqa: E402

SAMPLE = datasets.load("mnist-sample")
SMALL = datasets.Dataset(
    name="mnist-small",
    x_train=SAMPLE.x_train[:2000],
    y_train=SAMPLE.y_train[:2000],
    x_test=SAMPLE.x_test[:500],
    y_test=SAMPLE.y_test[:500],
)
TINY = datasets.Dataset(
    name="mnist-tiny",
    x_train=SAMPLE.x_train[:100],
    y_train=SAMPLE.y_train[:100],
    x_test=SAMPLE.x_test[:100],
    y_test=SAMPLE.y_test[:100],
)


@pytest.fixture(scope="module")
def net():
    net = mlp((784, 32, 10), seed=0)
    net, _ = train_classifier(SMALL, net, Recipe(epochs=8, lr=5e-3, shift=0, validation_split=0.0),
                              progress=False)
    return net


@pytest.fixture(scope="module")
def server(net) -> Iterator[web.WebServer]:
    srv = web.make_server(net, "127.0.0.1", 0)
    srv.start()
    yield srv
    srv.shutdown()


def start(net, **kwargs: Any) -> web.WebServer:
    srv = web.make_server(net, "127.0.0.1", 0, **kwargs)
    srv.start()
    return srv


def request(srv: web.WebServer, method: str, path: str, body: bytes | str | None = None,
            headers: dict[str, str] | None = None, json_body: Any = None) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request (the path is sent exactly as given)."""
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body)
        headers.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True, skip_host="Host" in headers)
        for key, value in headers.items():
            conn.putheader(key, value)
        if body is not None and "Content-Length" not in headers:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def api(srv: web.WebServer, method: str, path: str, payload: Any = None, **kw: Any) -> tuple[int, Any]:
    status, headers, body = request(srv, method, path, json_body=payload, **kw)
    assert headers["content-type"].startswith("application/json"), (status, body[:200])
    assert headers["cache-control"] == "no-store"
    return status, json.loads(body)


def assert_error(status: int, headers: dict[str, str], body: bytes, expected: int, words: str = "") -> str:
    assert status == expected, (status, body[:300])
    assert headers["content-type"].startswith("application/json")
    message = json.loads(body)["error"]
    assert isinstance(message, str) and message
    assert "Traceback" not in message and "File \"" not in message
    assert words.lower() in message.lower(), message
    return message


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def data_url(raw: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(raw).decode()


def canvas_png(digit: np.ndarray) -> bytes:
    """A 28x28 MNIST digit drawn big, like the page's 280x280 canvas (white on black)."""
    img = Image.fromarray(digit.reshape(28, 28)).resize((280, 280), Image.Resampling.BILINEAR)
    return png_bytes(np.asarray(img.convert("RGBA")))


def confident_digits(net, count: int) -> list[int]:
    """Indices of test digits the network gets right with probability > 0.95."""
    probs = net.predict(SAMPLE.x_test[:300])
    ok = np.flatnonzero((probs.argmax(1) == SAMPLE.y_test[:300]) & (probs.max(1) > 0.95))
    labels_seen: set[int] = set()
    picks = []
    for i in ok:  # different digits, to cover several classes
        if int(SAMPLE.y_test[i]) not in labels_seen:
            labels_seen.add(int(SAMPLE.y_test[i]))
            picks.append(int(i))
        if len(picks) == count:
            break
    return picks


# ----------------------------------------------------------------------------- static files


@pytest.mark.parametrize("path, kind", [
    ("/", "text/html"),
    ("/index.html", "text/html"),
    ("/app.js", "text/javascript"),
    ("/style.css", "text/css"),
    ("/static/app.js", "text/javascript"),
    ("/paint.js", "text/javascript"),
    ("/static/style.css", "text/css"),
    ("/?from=test", "text/html"),
])
def test_static_files(server, path, kind):
    status, headers, body = request(server, "GET", path)
    assert status == 200
    assert headers["content-type"].startswith(kind)
    assert headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert int(headers["content-length"]) == len(body) > 100
    if kind == "text/html":
        assert b'id="canvas"' in body and b'id="train"' in body
        assert "default-src 'self'" in headers["content-security-policy"]
        assert b"http://" not in body and b"https://" not in body  # no CDN: works offline


def test_page_uses_no_external_resources():
    for name in ("index.html", "app.js", "paint.js", "style.css"):
        text = (web_http.STATIC_DIR / name).read_text()
        assert "https://" not in text and "http://" not in text, name
        assert "@import" not in text


def test_head_gives_headers_only(server):
    status, headers, body = request(server, "HEAD", "/")
    assert status == 200 and body == b""
    assert int(headers["content-length"]) > 100


@pytest.mark.parametrize("path", [
    "/../../etc/passwd",
    "/static/../api.py",
    "/static/../../numpynn/network.py",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2E%2E/api.py",
    "/static/%2e%2e/api.py",
    "/..%2fhttp.py",
    "/static/..%2f..%2fnetwork.py",
    "/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/%252e%252e/api.py",
    "/....//api.py",
    "/..\\api.py",
    "/%5c..%5capi.py",
    "//etc/passwd",
    "/etc/passwd",
    "/http.py",
    "/trainer.py",
    "/launch.py",
    "/__init__.py",
    "/static",
    "/index.html%00.css",
    "/%00",
    "/%ff%fe",
    "/.",
    "/..",
])
def test_path_traversal_is_404(server, path):
    status, headers, body = request(server, "GET", path)
    assert_error(status, headers, body, 404)
    assert b"root:" not in body and b"import" not in body


def test_unknown_paths_are_404(server):
    for path in ("/nope", "/nope.html", "/api", "/api/", "/api/nope", "/api/train/nope", "/favicon.ico"):
        status, headers, body = request(server, "GET", path)
        assert_error(status, headers, body, 404)
    status, headers, body = request(server, "POST", "/api/nope", json_body={})
    assert_error(status, headers, body, 404)


@pytest.mark.parametrize("method, path, allow", [
    ("GET", "/api/predict", "POST"),
    ("PUT", "/api/predict", "POST"),
    ("GET", "/api/train", "POST"),
    ("DELETE", "/api/train", "POST"),
    ("POST", "/api/train/status", "GET, HEAD"),
    ("POST", "/api/model", "GET, HEAD"),
    ("POST", "/", "GET, HEAD"),
    ("DELETE", "/app.js", "GET, HEAD"),
    ("OPTIONS", "/", "GET, HEAD"),
])
def test_wrong_method_is_405(server, method, path, allow):
    status, headers, body = request(server, method, path, json_body={} if method == "POST" else None)
    assert_error(status, headers, body, 405)
    assert headers["allow"] == allow


def test_unknown_method_is_a_json_501(server):
    status, headers, body = request(server, "BREW", "/")
    assert_error(status, headers, body, 501)


def test_foreign_host_header_is_refused(server):
    status, headers, body = request(server, "GET", "/", headers={"Host": "evil.example:8000"})
    assert_error(status, headers, body, 403, "loopback")
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", f"[::1]:{server.port}"):
        assert request(server, "GET", "/", headers={"Host": host})[0] == 200


def test_keep_alive_serves_several_requests_on_one_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for path in ("/", "/api/model", "/app.js"):
            conn.request("GET", path)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200
    finally:
        conn.close()


def test_answers_go_out_without_waiting_for_acknowledgements(net, monkeypatch):
    """Every connection has Nagle's algorithm off (TCP_NODELAY): an answer's headers and body
    are two writes, and with it on the body waits for the client's delayed acknowledgement
    of the headers (about 40 ms an answer on Linux)."""
    import socket

    seen: list[int] = []
    setup = web_http.Handler.setup

    def record(self):
        setup(self)
        seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(web_http.Handler, "setup", record)
    srv = start(net)
    try:
        assert api(srv, "GET", "/api/model")[0] == 200
        assert api(srv, "POST", "/api/predict", {"image": [0.0] * 700 + [1.0] * 84})[0] in (200, 400)
    finally:
        srv.shutdown()
    assert len(seen) == 2 and all(seen), seen


# ----------------------------------------------------------------------------- /api/predict


def test_predict_png_of_real_mnist_digits(server, net):
    picks = confident_digits(net, 5)
    assert len(picks) == 5
    for i in picks:
        raw = canvas_png(SAMPLE.x_test[i])
        status, r = api(server, "POST", "/api/predict", {"png": data_url(raw)})
        assert status == 200, r
        assert r["digit"] == int(SAMPLE.y_test[i]), (i, r["probabilities"])
        # exactly the preprocessing of `numpynn predict`, and the network's own answer
        x = images.preprocess(raw)
        np.testing.assert_allclose(r["input"], x, atol=1e-4)
        np.testing.assert_allclose(r["probabilities"], net.predict(x[None])[0], atol=1e-5)
        assert len(r["probabilities"]) == 10 and abs(sum(r["probabilities"]) - 1) < 1e-4
        assert r["probability"] == pytest.approx(max(r["probabilities"]), abs=1e-6)
        assert len(r["input"]) == 784 and min(r["input"]) >= 0 and max(r["input"]) <= 1
        assert [(h["index"], h["type"], h["activation"], h["shape"], h["view"], len(h["values"]))
                for h in r["layers"]] == [(0, "Dense", "sigmoid", [32], "units", 32)]
        assert len(r["saliency"]) == 784 and r["saliency_max"] > 0
        assert "log p" in r["saliency_method"]
        assert r["model"]["sizes"] == [784, 32, 10] and r["model"]["generation"] == 1


def test_saliency_is_the_gradient_of_the_log_probability(server, net):
    """Checked against central differences of log p_c on the network in float64."""
    i = confident_digits(net, 1)[0]
    x = SAMPLE.x_test[i].astype(np.float64) / 255.0
    status, r = api(server, "POST", "/api/predict", {"image": x.tolist()})
    assert status == 200
    seen = np.asarray(r["input"], dtype=np.float64)
    c = r["digit"]
    net64 = net.copy("float64")

    def log_p(v):
        return float(np.log(net64.predict(v[None])[0, c]))

    sal = np.asarray(r["saliency"])
    exact = web_api.analyse(net64, seen)
    exact = np.asarray(exact["saliency"])
    np.testing.assert_allclose(sal, exact, rtol=0, atol=1e-3 * np.abs(exact).max())
    eps = 1e-5
    for j in list(np.argsort(-np.abs(exact))[:4]) + [0, 400]:
        bump = np.zeros(784)
        bump[j] = eps
        numeric = (log_p(seen + bump) - log_p(seen - bump)) / (2 * eps)
        assert numeric == pytest.approx(exact[j], rel=1e-3, abs=1e-7), j


def test_predict_accepts_784_numbers_and_28_rows(server, net):
    i = confident_digits(net, 1)[0]
    x = SAMPLE.x_test[i].astype(np.float64) / 255.0
    for image in (x.tolist(), x.reshape(28, 28).tolist()):
        status, r = api(server, "POST", "/api/predict", {"image": image})
        assert status == 200 and r["digit"] == int(SAMPLE.y_test[i])


def test_concurrent_predictions_agree(server, net):
    raw = data_url(canvas_png(SAMPLE.x_test[confident_digits(net, 1)[0]]))
    results: list[Any] = []

    def go():
        results.append(api(server, "POST", "/api/predict", {"png": raw}))

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and all(s == 200 for s, _ in results)
    assert len({json.dumps(r["probabilities"]) for _, r in results}) == 1


def _bad_bodies() -> list[tuple[str, Any, str]]:
    black = png_bytes(np.zeros((280, 280), np.uint8))
    white = png_bytes(np.full((280, 280), 255, np.uint8))
    digit = canvas_png(SAMPLE.x_test[0])
    big = png_bytes(np.zeros((3000, 3000), np.uint8))  # a small file, a huge picture
    return [
        ("malformed JSON", b"{", "malformed JSON"),
        ("truncated JSON", b'{"png": "data:image/png;base64,', "malformed JSON"),
        ("NaN literal", b'{"image": [NaN]}', "JSON"),
        ("not UTF-8", b'{"png": "\xff\xfe"}', "UTF-8"),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "JSON"),
        ("a list", [1, 2, 3], "JSON object"),
        ("a string", "png", "JSON object"),
        ("empty object", {}, "exactly one"),
        ("unknown field", {"jpeg": "x"}, "unknown field"),
        ("extra field", {"png": data_url(digit), "colour": "red"}, "unknown field"),
        ("both fields", {"png": data_url(digit), "image": [0.0] * 784}, "exactly one"),
        ("png not a string", {"png": 12}, "string"),
        ("png null", {"png": None}, "string"),
        ("bad base64", {"png": "data:image/png;base64,@@@not base64@@@"}, "base64"),
        ("base64 with junk", {"png": "data:image/png;base64,iVBORw0KGgo=%%%"}, "base64"),
        ("empty png", {"png": "data:image/png;base64,"}, "empty"),
        ("not a data URL", {"png": "data:text/plain;base64,aGVsbG8="}, "data URL"),
        ("not an image", {"png": data_url(b"hello, world, this is text")}, "image"),
        ("truncated png", {"png": data_url(digit[: len(digit) // 2])}, "image"),
        ("png header only", {"png": data_url(digit[:33])}, "image"),
        ("blank black drawing", {"png": data_url(black)}, "blank"),
        ("blank white drawing", {"png": data_url(white)}, "blank"),
        ("huge picture", {"png": data_url(big)}, "too large"),
        ("image too short", {"image": [0.5] * 783}, "784"),
        ("image not a list", {"image": "0.5"}, "784"),
        ("image of strings", {"image": ["0.5"] * 784}, "numbers"),
        ("image of booleans", {"image": [True] * 784}, "numbers"),
        ("image of lists", {"image": [[0.5]] * 784}, "numbers"),
        ("image above 1", {"image": [2.0] * 784}, "[0, 1]"),
        ("image below 0", {"image": [-0.5] * 784}, "[0, 1]"),
        ("blank image", {"image": [0.0] * 784}, "blank"),
        ("ragged rows", {"image": [[0.5] * 28] * 27 + [[0.5] * 27]}, "784"),
    ]


@pytest.mark.parametrize("name, body, words", _bad_bodies(), ids=[b[0] for b in _bad_bodies()])
def test_bad_predict_requests_are_400(server, name, body, words):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, headers, answer = request(server, "POST", "/api/predict", raw,
                                      headers={"Content-Type": "application/json"})
    assert_error(status, headers, answer, 400, words)


def test_empty_body_is_400(server):
    status, headers, body = request(server, "POST", "/api/predict", b"",
                                    headers={"Content-Type": "application/json"})
    assert_error(status, headers, body, 400, "JSON object")


def test_oversized_body_is_413(server):
    payload = json.dumps({"png": "data:image/png;base64," + "A" * web.MAX_BODY_BYTES}).encode()
    status, headers, body = request(server, "POST", "/api/predict", payload,
                                    headers={"Content-Type": "application/json"})
    assert_error(status, headers, body, 413, "too large")
    assert headers.get("connection") == "close"


def test_oversized_content_length_is_refused_without_reading(server):
    """A client announcing 1 GB gets 413 at once: nothing is read, nothing is waited for."""
    status, headers, body = request(server, "POST", "/api/predict", b"{}",
                                    headers={"Content-Type": "application/json",
                                             "Content-Length": str(10**9)})
    assert_error(status, headers, body, 413)


def test_a_body_of_exactly_the_limit_is_read(server):
    payload = b'{"png": "' + b"A" * (web.MAX_BODY_BYTES - 12) + b'"}'
    assert len(payload) == web.MAX_BODY_BYTES - 1
    status, headers, body = request(server, "POST", "/api/predict", payload,
                                    headers={"Content-Type": "application/json"})
    assert_error(status, headers, body, 400)  # read and judged: not an image


@pytest.mark.parametrize("headers, expected, words", [
    ({"Content-Type": "text/plain"}, 415, "application/json"),
    ({"Content-Type": "application/x-www-form-urlencoded"}, 415, "application/json"),
    ({}, 415, "application/json"),
    ({"Content-Type": "application/json", "Content-Length": "-5"}, 400, "Content-Length"),
    ({"Content-Type": "application/json", "Content-Length": "ten"}, 400, "Content-Length"),
])
def test_bad_headers(server, headers, expected, words):
    status, h, body = request(server, "POST", "/api/predict", b'{"png": ""}', headers=headers)
    assert_error(status, h, body, expected, words)


def test_missing_content_length_is_411(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.putrequest("POST", "/api/predict")
        conn.putheader("Content-Type", "application/json")
        conn.endheaders()
        resp = conn.getresponse()
        assert_error(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read(), 411)
    finally:
        conn.close()


def test_predict_without_a_network_is_503():
    srv = start(None, train_data=TINY)
    try:
        status, r = api(srv, "POST", "/api/predict", {"png": data_url(canvas_png(SAMPLE.x_test[0]))})
        assert status == 503 and "Watch it learn" in r["error"]
        status, m = api(srv, "GET", "/api/model")
        assert status == 200 and m["loaded"] is False and m["generation"] == 0
    finally:
        srv.shutdown()


def test_make_server_refuses_a_network_that_is_not_for_28x28_digits():
    with pytest.raises(ValueError, match="784"):
        web.make_server(mlp((100, 10)), "127.0.0.1", 0)


# ----------------------------------------------------------------------------- hidden layers of any kind


def odd_network() -> nn.Network:
    """Three hidden Dense layers of odd widths and activations, with Dropout between them."""
    return nn.Network([
        nn.Dense(784, 37, "sigmoid"), nn.Dropout(0.3),
        nn.Dense(37, 23, "relu"), nn.Dropout(0.2),
        nn.Dense(23, 11, "tanh"),
        nn.Dense(11, 10, "softmax"),
    ], seed=3)


class PoolMaps(nn.Layer):
    """(1, 28, 28) -> (2, 14, 14): a 2x2 mean pool p, and s·p with a learnable scale s.

    A stand-in for a convolution (a layer whose output is channels of maps)."""

    def build(self, input_shape):
        self.add_param("s", (1,), init="ones")
        _, h, w = input_shape
        return (2, h // 2, w // 2)

    def forward(self, x, training=False):
        b, _, h, w = x.shape
        self.p = x.reshape(b, 1, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
        return np.concatenate([self.p, self.params["s"][0] * self.p], axis=1)

    def backward(self, grad_y):
        self.grads["s"][0] = (grad_y[:, 1:] * self.p).sum()
        grad_p = grad_y[:, :1] + self.params["s"][0] * grad_y[:, 1:]
        return np.repeat(np.repeat(grad_p, 2, axis=2), 2, axis=3) / 4


def maps_network(reshape: bool) -> nn.Network:
    """784 values (reshaped to one 28x28 channel) or a (1, 28, 28) input, through PoolMaps."""
    tail = [PoolMaps(), nn.Flatten(), nn.Dense(392, 10, "softmax")]
    if reshape:
        return nn.Network([nn.Reshape((1, 28, 28)), *tail], input_shape=(784,), seed=1)
    return nn.Network(tail, input_shape=(1, 28, 28), seed=1)


def own_forward(net: nn.Network, x: np.ndarray) -> list[np.ndarray]:
    """Each layer's output for one input, by the network's own layers in inference mode."""
    y = np.asarray(x, dtype=net.dtype).reshape(1, *net.input_shape)
    outputs = []
    for layer in net.layers:
        y = layer.forward(y, training=False)
        outputs.append(np.array(y[0]))
    return outputs


def test_predict_returns_exactly_the_hidden_layers_that_compute():
    net = odd_network()
    raw = canvas_png(SAMPLE.x_test[0])
    x = images.preprocess(raw)
    srv = start(net)
    try:
        status, r = api(srv, "POST", "/api/predict", {"png": data_url(raw)})
    finally:
        srv.shutdown()
    assert status == 200, r
    layers = r["layers"]
    # Dropout (the identity at inference) is not shown; nor is the output layer
    assert [(h["index"], h["type"], h["activation"], h["shape"], h["view"]) for h in layers] == [
        (0, "Dense", "sigmoid", [37], "units"),
        (2, "Dense", "relu", [23], "units"),
        (4, "Dense", "tanh", [11], "units"),
    ]
    expected = own_forward(net, x)
    for h in layers:
        want = expected[h["index"]]
        assert np.asarray(h["values"]).shape == want.shape
        np.testing.assert_allclose(h["values"], want, rtol=1e-3, atol=1e-6)
    assert np.count_nonzero(expected[2]) < 23  # the ReLU layer is really seen as it is
    np.testing.assert_allclose(r["probabilities"], net.predict(x[None])[0], atol=1e-5)
    model = r["model"]
    assert model["description"] == "784-37-23-11-10"
    assert model["activations"] == ["sigmoid", "relu", "tanh", "softmax"]
    assert [m["type"] for m in model["layers"]] == ["Dense", "Dropout", "Dense", "Dropout", "Dense", "Dense"]


@pytest.mark.parametrize("reshape", [True, False], ids=["784 values reshaped", "a (1, 28, 28) input"])
def test_a_layer_of_channels_comes_back_as_maps(reshape):
    net = maps_network(reshape)
    x = images.preprocess(canvas_png(SAMPLE.x_test[1]))
    r = web_api.analyse(net, x)
    first = 1 if reshape else 0  # Reshape and Flatten pass their input through
    assert [(h["index"], h["type"], h["shape"], h["view"]) for h in r["layers"]] == [
        (first, "PoolMaps", [2, 14, 14], "maps")]
    values = np.asarray(r["layers"][0]["values"])
    assert values.shape == (2, 14, 14)
    np.testing.assert_allclose(values, own_forward(net, x)[first], rtol=1e-3, atol=1e-6)
    assert len(r["saliency"]) == 784 and r["saliency_max"] > 0
    app = web.App(net)
    assert app.model_info()["description"] == ("784-2x14x14-10" if reshape else "1x28x28-2x14x14-10")


def refused_networks() -> list[tuple[str, Any, list[str]]]:
    return [
        ("two inputs", lambda: mlp((2, 2, 1)), ["28x28", "784 inputs", "takes 2 inputs"]),
        ("100 inputs", lambda: mlp((100, 10)), ["28x28", "takes 100 inputs"]),
        ("784 values, not an image", lambda: nn.Network([nn.Flatten(), nn.Dense(784, 10, "softmax")],
                                                        input_shape=(4, 196)), ["28x28", "shape 4x196"]),
        ("one sigmoid output", lambda: mlp((784, 8, 1)),
         ["one row of class probabilities", "softmax", "1 sigmoid output"]),
        ("ten sigmoid outputs", lambda: nn.Network([nn.Dense(784, 10, "sigmoid")], loss="squared_error"),
         ["one row of class probabilities", "10 sigmoid outputs"]),
    ]


@pytest.mark.parametrize("name, make, words", refused_networks(), ids=[n[0] for n in refused_networks()])
def test_a_network_the_page_cannot_show_is_one_clear_line(tmp_path, capsys, name, make, words):
    net = make()
    with pytest.raises(ValueError) as caught:
        web.check_network(net)
    for word in words:
        assert word in str(caught.value), str(caught.value)
    with pytest.raises(ValueError, match="the page needs"):
        web.make_server(net, "127.0.0.1", 0)
    path = tmp_path / "model.safetensors"
    net.save(str(path))
    assert cli.main(["serve", str(path), "--port", "0"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith("numpynn serve: error: the page needs") and words[-1] in err, err


def test_the_page_draws_every_hidden_layer(tmp_path):
    """In Chromium: the page builds one strip per hidden layer of the odd network (37, 23 and
    11 cells) and small grey maps for a (C, H, W) layer, painted from the answer."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="drawing the page needs Selenium")
    # the same browser as tests/test_web_browser.py: NUMPYNN_CHROMIUM and NUMPYNN_CHROMEDRIVER
    chromium = Path(os.environ.get("NUMPYNN_CHROMIUM", "/usr/bin/chromium"))
    chromedriver = Path(os.environ.get("NUMPYNN_CHROMEDRIVER", "/usr/bin/chromedriver"))
    if not (chromium.exists() and chromedriver.exists()):
        pytest.skip(f"drawing the page needs {chromium} and {chromedriver} (apt-get install chromium "
                    "chromium-driver)")
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(chromium)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1200", "--no-first-run", "--disable-background-networking"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=str(chromedriver),
                                      log_output=str(tmp_path / "chromedriver.log"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")
        driver = webdriver.Chrome(options=options, service=service)
    servers = [start(odd_network()), start(maps_network(reshape=True))]
    try:
        seen = []
        for srv in servers:
            driver.get(srv.url)
            WebDriverWait(driver, 60).until(lambda d: "784" in d.find_element("id", "model").text)
            canvas = driver.find_element("id", "canvas")
            (ActionChains(driver).move_to_element_with_offset(canvas, 0, -80).click_and_hold()
             .move_by_offset(0, 80).move_by_offset(0, 80).release().perform())  # a "1"
            WebDriverWait(driver, 60).until(
                lambda d: d.find_element("id", "prediction").get_attribute("data-digit")
                and d.find_element("id", "prediction").get_attribute("data-fresh") == "true")
            seen.append(driver.execute_script("""
                const paint = (c) => {  // distinct colours painted on a canvas
                  const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
                  const colours = new Set();
                  for (let i = 0; i < d.length; i += 4) colours.add(`${d[i]},${d[i + 1]},${d[i + 2]}`);
                  return colours.size;
                };
                return [...document.querySelectorAll("#hidden .layer")].map((block) => ({
                  index: Number(block.dataset.index),
                  label: block.querySelector(".strip-label").textContent,
                  strips: [...block.querySelectorAll("canvas.strip")].map((c) => [c.width, c.height, paint(c)]),
                  maps: [...block.querySelectorAll("canvas.map")].map((c) => [c.width, c.height, paint(c)]),
                }));"""))
        dense, maps = seen
        assert [(b["index"], [s[:2] for s in b["strips"]], b["maps"]) for b in dense] == [
            (0, [[37, 1]], []), (2, [[23, 1]], []), (4, [[11, 1]], [])]
        assert all(b["strips"][0][2] > 1 for b in dense), dense  # painted, not one blank colour
        for b, words in zip(dense, ("37 sigmoid units", "23 relu units", "11 tanh units"), strict=True):
            assert words in b["label"], b["label"]
        assert [(b["index"], [m[:2] for m in b["maps"]], b["strips"]) for b in maps] == [
            (1, [[14, 14], [14, 14]], [])]
        assert all(m[2] > 1 for m in maps[0]["maps"]) and "2 maps of 14×14" in maps[0]["label"]
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
        for srv in servers:
            srv.shutdown()


# ----------------------------------------------------------------------------- /api/train


def test_watch_it_learn_trains_and_then_predicts_with_the_new_network(net):
    srv = start(net, train_data=SMALL, train_layers=(784, 16, 10),
                train_recipe=Recipe(epochs=3, lr=5e-3, shift=0))
    try:
        status, idle = api(srv, "GET", "/api/train/status")
        assert status == 200 and idle["state"] == "idle" and idle["epoch"] == 0
        status, s = api(srv, "POST", "/api/train", {})
        assert status == 202 and s["state"] in ("running", "done")
        labels, pixels = s["digits"]["labels"], s["digits"]["pixels"]
        assert labels == list(range(10))
        assert len(pixels) == 10 and all(len(p) == 784 for p in pixels)
        assert all(isinstance(v, int) and 0 <= v <= 255 for v in pixels[0])
        assert srv.app.trainer.wait(60)
        status, s = api(srv, "GET", "/api/train/status")
        assert s["state"] == "done", s["error"]
        assert s["epoch"] == s["epochs"] == 3 and s["history"]["epoch"] == [1, 2, 3]
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert len(s["history"][key]) == 3 and all(isinstance(v, float) for v in s["history"][key])
        assert s["history"]["val_accuracy"][-1] > 0.6
        assert len(s["predictions"]) == 10 and s["predictions_epoch"] == 3
        assert all(0 <= p["digit"] <= 9 and 0 <= p["probability"] <= 1 for p in s["predictions"])
        assert "pixels" not in s["digits"]
        assert api(srv, "GET", "/api/train/status?pixels=1")[1]["digits"]["pixels"] == pixels
        assert s["model_generation"] == 2
        status, m = api(srv, "GET", "/api/model")
        assert m["sizes"] == [784, 16, 10] and "trained in the page" in m["source"]
        status, r = api(srv, "POST", "/api/predict", {"png": data_url(canvas_png(SAMPLE.x_test[1]))})
        assert status == 200 and [h["shape"] for h in r["layers"]] == [[16]] and r["model"]["generation"] == 2
    finally:
        srv.shutdown()


def test_a_second_training_job_is_409_until_the_first_stops(net):
    # 100,000 epochs of 100 digits: the job runs until the test stops it
    srv = start(net, train_data=TINY, train_layers=(784, 8, 10),
                train_recipe=Recipe(epochs=100_000, lr=1e-3, shift=0))
    try:
        status, s = api(srv, "POST", "/api/train", {})
        assert status == 202 and s["state"] == "running"
        status, r = api(srv, "POST", "/api/train", {})
        assert status == 409 and "already running" in r["error"]
        assert api(srv, "GET", "/api/train/status")[1]["state"] == "running"
        srv.app.trainer.stop()
        status, s = api(srv, "GET", "/api/train/status")
        assert s["state"] == "stopped" and s["model_generation"] == 1  # not adopted
        assert api(srv, "GET", "/api/model")[1]["sizes"] == [784, 32, 10]
        status, s = api(srv, "POST", "/api/train", {})  # a stopped job can be restarted
        assert status == 202 and s["state"] == "running"
    finally:
        srv.shutdown()  # stops the running job too
    assert srv.app.trainer.state == "stopped"


def test_train_refuses_options(server):
    status, headers, body = request(server, "POST", "/api/train", json_body={"epochs": 5})
    assert_error(status, headers, body, 400, "no options")
    status, headers, body = request(server, "POST", "/api/train", b"[",
                                    headers={"Content-Type": "application/json"})
    assert_error(status, headers, body, 400, "malformed")


def test_a_failing_training_job_reports_failed(net, monkeypatch):
    srv = start(net, train_data=TINY, train_layers=(784, 8, 10), train_recipe=Recipe(epochs=2, shift=0))
    try:
        def broken(*args, **kwargs):
            raise RuntimeError("the disk caught fire")

        monkeypatch.setattr("numpynn.recipes.train_classifier", broken)
        assert api(srv, "POST", "/api/train", {})[0] == 202
        assert srv.app.trainer.wait(30)
        s = api(srv, "GET", "/api/train/status")[1]
        assert s["state"] == "failed" and "caught fire" in s["error"]
        assert api(srv, "GET", "/api/model")[1]["generation"] == 1
    finally:
        srv.shutdown()


# ----------------------------------------------------------------------------- serve()


def test_shutdown_is_clean_and_idempotent(net):
    srv = web.make_server(net, "127.0.0.1", 0)
    srv.shutdown()  # never served: must not hang
    srv.shutdown()
    with web.make_server(net, "127.0.0.1", 0) as srv:
        thread = srv.start()
        assert request(srv, "GET", "/")[0] == 200
    assert not thread.is_alive()


def test_default_model_path_follows_numpynn_data(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPYNN_DATA", str(tmp_path))
    assert web.default_model_path() == tmp_path / "web-model.safetensors"


def test_serve_loads_the_cached_model(tmp_path, monkeypatch, net, capsys):
    monkeypatch.setenv("NUMPYNN_DATA", str(tmp_path))
    net.save(str(tmp_path / "web-model.safetensors"))
    loaded, source = web.load_or_train_default(progress=False)
    assert loaded.sizes == [784, 32, 10] and "web-model.safetensors" in source
    np.testing.assert_array_equal(loaded.params, net.params)


def _serve_once(monkeypatch, **kwargs: Any) -> None:
    """Run serve() with serve_forever replaced by an immediate Ctrl-C."""
    seen: dict[str, Any] = {}

    def interrupted(self, poll_interval=0.5):
        seen["url"] = self.url
        raise KeyboardInterrupt

    monkeypatch.setattr(web.WebServer, "serve_forever", interrupted)
    web.serve(**kwargs)
    assert seen["url"].startswith("http://")


def test_serve_prints_the_address_and_stops_on_ctrl_c(tmp_path, monkeypatch, net, capsys):
    path = tmp_path / "model.safetensors"
    net.save(str(path))
    _serve_once(monkeypatch, model=str(path), port=0)
    out, err = capsys.readouterr()
    assert "http://127.0.0.1:" in out and "stopped" in out
    assert "warning" not in err


def test_serve_warns_when_listening_beyond_loopback(tmp_path, monkeypatch, net, capsys):
    path = tmp_path / "model.safetensors"
    net.save(str(path))
    _serve_once(monkeypatch, model=str(path), host="0.0.0.0", port=0)
    out, err = capsys.readouterr()
    assert "warning" in err and "0.0.0.0" in err
    assert "http://127.0.0.1:" in out


def test_serve_refuses_a_missing_or_unsuitable_model(tmp_path):
    with pytest.raises(FileNotFoundError):
        web.serve(model=str(tmp_path / "nope.safetensors"), port=0)
    small = tmp_path / "xor.safetensors"
    mlp((2, 2, 1)).save(str(small))
    with pytest.raises(ValueError, match="784"):
        web.serve(model=str(small), port=0)
    assert serialization.load(str(small)).sizes == [2, 2, 1]


def test_static_folder_is_inside_the_package():
    root = Path(web_http.__file__).parent / "static"
    assert web_http.STATIC_DIR == root.resolve()
    assert {"index.html", "app.js", "style.css"} <= {p.name for p in root.iterdir()}


def test_a_port_in_use_is_a_clear_error(server, net):
    with pytest.raises(OSError, match="cannot listen on 127.0.0.1 port .*another port"):
        web.make_server(net, "127.0.0.1", server.port)


# ----------------------------------------------------------------------------- hostile input, fuzzed
#
# Every endpoint gets random bytes, wrong JSON types, huge numbers, NaN, deep nesting, wrong
# lengths, and bodies that stop in the middle: never a 500, never a traceback in the log,
# never a worker left hanging. The server closes a stalled connection after FUZZ_TIMEOUT.

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ_TIMEOUT = 0.5
# How long a stalled connection may take to be closed here: many times FUZZ_TIMEOUT, so that
# a busy machine never fails the test, yet far below the default REQUEST_TIMEOUT (30 s) that
# a server ignoring its request_timeout would wait. The time actually taken is measured by
# benchmarks/timeouts.py, not here.
GIVE_UP_WITHIN = 20 * FUZZ_TIMEOUT
FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
ENDPOINTS = ["/api/predict", "/api/train", "/api/train/status", "/api/model", "/", "/app.js"]


@pytest.fixture(scope="module")
def fuzz_server(net) -> Iterator[web.WebServer]:
    srv = start(net, train_data=TINY, train_layers=(784, 8, 10), request_timeout=FUZZ_TIMEOUT,
                train_recipe=Recipe(epochs=1, shift=0, validation_split=0.0))
    yield srv
    srv.shutdown()


def raw(srv: web.WebServer, data: bytes, *, finish: bool = True, wait: float = 60.0) -> bytes:
    """Send ``data`` as it is on a fresh connection (then, with ``finish``, end the sending
    side) and return everything the server sends until it closes the connection."""
    import socket
    import time

    with socket.create_connection(("127.0.0.1", srv.port), timeout=wait) as s:
        s.sendall(data)
        if finish:
            s.shutdown(socket.SHUT_WR)
        got = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                return got
            got += chunk
    raise AssertionError(f"the server kept the connection open for {wait} s")


def check_answers(response: bytes) -> None:
    """Each answer on the connection: a status below 500, and errors as JSON."""
    while response:
        head, _, rest = response.partition(b"\r\n\r\n")
        status_line = head.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1."), response[:300]
        status = int(status_line.split()[1])
        assert status < 500, response[:500]
        length = 0
        for line in head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value)
        body, response = rest[:length], rest[length:]
        if status >= 400 and body:
            assert "error" in json.loads(body), body[:300]


def post(path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    head = {"Host": "127.0.0.1", "Content-Type": "application/json", "Content-Length": str(len(body)),
            "Connection": "close", **(headers or {})}
    return (f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items())
            + "\r\n").encode("latin-1") + body


@pytest.fixture
def clean_log(fuzz_server, capsys) -> Iterator[None]:
    """After the test: no traceback and no server error in the log, no connection left open."""
    import time

    yield
    deadline = time.monotonic() + 60  # a guard only: the workers end within FUZZ_TIMEOUT
    while fuzz_server.open_connections and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fuzz_server.open_connections == 0, "a worker is still busy with a connection"
    fuzz_server.app.trainer.wait(60)
    err = capsys.readouterr().err
    assert "Traceback" not in err and "error in" not in err and "failed" not in err, err[-2000:]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**300, max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(
        st.sampled_from(["png", "image", "x", ""]) | st.text(max_size=5), inner, max_size=4),
    max_leaves=30)
pixels = st.lists(st.integers(min_value=-(10**400), max_value=10**400)
                  | st.floats(allow_nan=True, allow_infinity=True) | st.booleans() | st.none()
                  | st.just(0.5), min_size=0, max_size=800)
odd_numbers = (st.integers(min_value=-(10**400), max_value=10**400) | st.floats(allow_nan=True, allow_infinity=True)
               | st.booleans() | st.none() | st.text(max_size=3) | st.lists(st.just(0.5), max_size=2))
DIGIT = [round(float(v) / 255, 3) for v in SAMPLE.x_test[0]]
predict_bodies = st.one_of(
    st.builds(lambda i, v: {"image": DIGIT[:i] + [v] + DIGIT[i + 1:]}, st.integers(0, 783), odd_numbers),
    st.builds(lambda v: {"image": v}, pixels),
    st.builds(lambda v: {"image": [v[i:i + 28] for i in range(0, len(v), 28)]}, pixels),
    st.builds(lambda b: {"png": base64.b64encode(b).decode()}, st.binary(max_size=300)),
    st.builds(lambda b, t: {"png": f"data:image/{t};base64," + base64.b64encode(b).decode()},
              st.binary(max_size=300), st.text(max_size=10)),
    st.builds(lambda t: {"png": t}, st.text(max_size=50)),
    json_values,
)


@FUZZ
@given(path=st.sampled_from(ENDPOINTS), body=st.binary(max_size=600))
def test_fuzz_random_bytes_as_a_body(fuzz_server, clean_log, path, body):
    check_answers(raw(fuzz_server, post(path, body)))


@FUZZ
@given(data=st.binary(max_size=600))
def test_fuzz_random_bytes_as_a_request(fuzz_server, clean_log, data):
    check_answers(raw(fuzz_server, data))


@FUZZ
@given(path=st.sampled_from(["/api/predict", "/api/train"]), value=predict_bodies)
def test_fuzz_wrong_json(fuzz_server, clean_log, path, value):
    body = json.dumps(value, allow_nan=True).encode()
    check_answers(raw(fuzz_server, post(path, body)))


@FUZZ
@given(path=st.sampled_from(["/api/predict", "/api/train"]), depth=st.integers(1, 200_000),
       kind=st.sampled_from(["[", '{"image":[', '{"a":{"b":[']))
def test_fuzz_deep_nesting(fuzz_server, clean_log, path, depth, kind):
    close = {"[": "]", '{"image":[': "]}", '{"a":{"b":[': "]}}"}[kind]
    body = (kind * depth + close * depth).encode()[: web_http.MAX_BODY_BYTES]
    check_answers(raw(fuzz_server, post(path, body)))


@FUZZ
@given(path=st.sampled_from(ENDPOINTS), declared=st.one_of(
    st.integers(0, 3000).map(str), st.sampled_from(["-1", "1e3", " 12 ", "abc", "", "99999999999999999999",
                                                    str(web_http.MAX_BODY_BYTES + 1), "0x10"])),
       body=st.binary(max_size=1000), ctype=st.sampled_from(["application/json", "text/plain",
                                                            "application/json; charset=utf-8", ""]))
def test_fuzz_wrong_lengths_and_types(fuzz_server, clean_log, path, declared, body, ctype):
    check_answers(raw(fuzz_server, post(path, body, {"Content-Length": declared, "Content-Type": ctype})))


@FUZZ
@given(query=st.text(max_size=60))
def test_fuzz_status_queries(fuzz_server, clean_log, query):
    from urllib.parse import quote

    answer = raw(fuzz_server, f"GET /api/train/status?{quote(query)} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Connection: close\r\n\r\n".encode())
    check_answers(answer)
    assert answer.startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("path", ["/api/predict", "/api/train"])
@pytest.mark.parametrize("cut", [0, 1, 40, 99])
def test_a_body_that_stops_midway_is_timed_out(fuzz_server, clean_log, path, cut):
    """The client promises 100 bytes, sends ``cut`` of them and then nothing, keeping the
    connection open: the server gives up after its time-out and closes it, unanswered."""
    import time

    started = time.monotonic()
    answer = raw(fuzz_server, post(path, (b"x" * 100)[:cut], {"Content-Length": "100"}), finish=False)
    assert answer == b"" and time.monotonic() - started < GIVE_UP_WITHIN


def test_a_client_that_sends_nothing_is_timed_out(fuzz_server, clean_log):
    import time

    started = time.monotonic()
    assert raw(fuzz_server, b"", finish=False) == b""
    # Not before its time-out: a busy machine cannot break this bound, it only makes the wait
    # longer (the server's clock starts after it accepts, ours before we connect).
    assert FUZZ_TIMEOUT * 0.9 <= time.monotonic() - started < GIVE_UP_WITHIN


def test_a_client_that_sends_half_a_request_line_is_timed_out(fuzz_server, clean_log):
    assert raw(fuzz_server, b"POST /api/pre", finish=False) == b""
    assert raw(fuzz_server, b"GET / HTTP/1.1\r\nHost: 127", finish=False) == b""


# ----------------------------------------------------------------------------- requests from other pages


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1:1",
                                    "https://127.0.0.1:{port}", "http://localhost:{port}"])
def test_a_post_from_another_page_is_403(fuzz_server, clean_log, origin):
    origin = origin.format(port=fuzz_server.port)
    host = f"127.0.0.1:{fuzz_server.port}"
    for path, payload in (("/api/train", {}), ("/api/predict", {"image": [0.5] * 784})):
        status, headers, body = request(fuzz_server, "POST", path, json_body=payload,
                                        headers={"Origin": origin, "Host": host})
        assert_error(status, headers, body, 403, "another page")
    assert fuzz_server.app.trainer.state != "running"  # nothing was started


def test_a_post_from_the_page_itself_or_no_browser_is_served(fuzz_server, clean_log):
    host = f"127.0.0.1:{fuzz_server.port}"
    for headers in ({"Origin": f"http://{host}", "Host": host}, {"Host": host}):
        status, _, _ = request(fuzz_server, "POST", "/api/predict", json_body={"image": DIGIT},
                               headers=headers)
        assert status == 200


# ----------------------------------------------------------------------------- /api/explain


def small_resnet() -> nn.Network:
    """A residual network with batch normalization (running statistics moved by a few passes)."""
    def conv_bn(c_in: int, c_out: int, stride: int = 1, act: str = "relu") -> list[nn.Layer]:
        return [nn.Conv2D(c_in, c_out, 3, stride=stride, padding=1, activation="identity"),
                nn.BatchNorm2D(c_out, activation=act)]

    net = nn.Network([
        nn.Reshape((1, 28, 28)), *conv_bn(1, 4), nn.MaxPool2D(2),
        nn.Residual(conv_bn(4, 4) + conv_bn(4, 4, act="identity"), activation="relu"),
        nn.Residual(conv_bn(4, 8, 2) + conv_bn(8, 8, act="identity"),
                    shortcut=nn.Conv2D(4, 8, 1, stride=2, activation="identity"), activation="relu"),
        nn.GlobalAvgPool2D(), nn.Dense(8, 10, "softmax"),
    ], input_shape=(784,), seed=0)
    for _ in range(3):
        net.forward(net.as_float(SAMPLE.x_train[:32]), training=True)
    return net


def _squares(grads: Any) -> float:
    if isinstance(grads, tuple):
        return sum(_squares(g) for g in grads)
    return float(np.sum(np.square(grads, dtype=np.float64)))


@pytest.fixture(scope="module", params=["dense", "convnet", "resnet"])
def served(request, net) -> Iterator[tuple[nn.Network, web.WebServer]]:
    model = {"dense": lambda: net, "convnet": lambda: nn.models.convnet(seed=0),
             "resnet": small_resnet}[request.param]()
    srv = start(model)
    yield model, srv
    srv.shutdown()


@pytest.mark.parametrize("label", [None, 4])
def test_explain_numbers_equal_network_gradients(served, label):
    model, srv = served
    payload = {"png": data_url(canvas_png(SAMPLE.x_test[1]))}
    x = web_api.parse_image(dict(payload))
    before = (model.params.copy(), model.state.copy())
    status, r = api(srv, "POST", "/api/explain", {**payload, "label": label})
    assert status == 200, r
    copy = model.copy("float64")
    probs = copy.predict(x)[0]
    assert r["prediction"] == int(np.argmax(probs)) and r["probabilities"] == probs.tolist()
    assert r["label"] == (r["prediction"] if label is None else label)
    loss, grads = copy.gradients(x, [r["label"]], training=False)
    assert r["loss"] == loss
    assert [(e["index"], e["type"], e["output_shape"]) for e in r["layers"]] == [
        (i, layer.name, list(layer.output_shape)) for i, layer in enumerate(model.layers)]
    for entry, g in zip(r["layers"], grads, strict=True):
        assert entry["param_grad_norm"] == pytest.approx(np.sqrt(_squares(g)), rel=1e-12, abs=0)
        assert entry["output_grad_norm"] > 0
    # the step: θ − R∇θ on a copy; the served network is the same before and after
    stepped = model.copy("float64")
    stepped.params[...] = copy.params - r["lr"] * copy.grads
    np.testing.assert_allclose(r["after_step"], stepped.predict(x)[0], rtol=1e-12, atol=1e-15)
    assert abs(r["after_step"][r["label"]] - r["probabilities"][r["label"]]) >= 0.05 or r["lr"] == 100
    assert srv.app.net is model
    np.testing.assert_array_equal(model.params, before[0])
    np.testing.assert_array_equal(model.state, before[1])
    predicted = api(srv, "POST", "/api/predict", payload)[1]["probabilities"]  # six digits there
    np.testing.assert_allclose(predicted, r["probabilities"], rtol=1e-5, atol=1e-6)
    # pictures for the page, kept small
    status, headers, body = request(srv, "POST", "/api/explain", json_body={**payload, "lr": 0.5})
    assert status == 200 and json.loads(body)["lr"] == 0.5 and len(body) < 150_000, len(body)
    for entry in r["layers"]:
        assert entry["view"] in ("units", "maps", "none")
        if entry["view"] == "maps":
            assert len(entry["values"]) == len(entry["grad"]) == len(entry["channels"]) <= web_backprop.EXPLAIN_MAPS
            assert max(len(entry["grad"][0]), len(entry["grad"][0][0])) <= web_backprop.EXPLAIN_SIDE
    assert len(r["input_grad"]) == 784 and r["first_layer"]["kind"] in ("units", "filters")


@pytest.mark.parametrize("body, words", [
    ({"label": 10}, "label must be a class 0..9"),
    ({"label": -1}, "label must be a class 0..9"),
    ({"label": "3"}, '"label" must be a digit 0..9'),
    ({"label": True}, '"label" must be a digit 0..9'),
    ({"label": 2.5}, '"label" must be a digit 0..9'),
    ({"lr": 0}, '"lr" must be a positive number'),
    ({"lr": -1}, '"lr" must be a positive number'),
    ({"lr": "big"}, '"lr" must be a positive number'),
    ({"step": True}, "unknown field"),
])
def test_bad_explain_requests_are_400_in_one_line(server, net, body, words):
    before = net.params.copy()
    status, headers, raw = request(server, "POST", "/api/explain",
                                   json_body={"png": data_url(canvas_png(SAMPLE.x_test[0])), **body})
    message = assert_error(status, headers, raw, 400, words)
    assert "\n" not in message
    np.testing.assert_array_equal(net.params, before)


def test_explain_takes_post_only_and_needs_a_network(server):
    status, headers, body = request(server, "GET", "/api/explain")
    assert_error(status, headers, body, 405)
    assert headers["allow"] == "POST"
    srv = web.WebServer(web_api.App(None), "127.0.0.1", 0)
    srv.start()
    try:
        status, headers, body = request(srv, "POST", "/api/explain",
                                        json_body={"png": data_url(canvas_png(SAMPLE.x_test[0]))})
        assert_error(status, headers, body, 503)
    finally:
        srv.shutdown()


def test_explain_works_for_a_network_of_28x28_inputs():
    srv = start(maps_network(reshape=False))
    try:
        status, r = api(srv, "POST", "/api/explain", {"png": data_url(canvas_png(SAMPLE.x_test[0])), "label": 2})
        assert status == 200 and r["label"] == 2
        # PoolMaps has no W: the first weight layer is the Dense of 392 inputs, one row each
        assert (r["first_layer"]["index"], r["first_layer"]["shape"]) == (2, [1, 392])
        assert [e["view"] for e in r["layers"]] == ["maps", "none", "units"]
    finally:
        srv.shutdown()
