"""End to end in a real browser: draw an MNIST test digit on the page with the mouse.

Headless Chromium from Debian (``apt-get install chromium chromium-driver``), driven by
Selenium through Debian's chromedriver. Why Selenium rather than Playwright: Debian
builds ``chromium`` and ``chromium-driver`` from one source package, so the driver
always matches the browser exactly, and nothing is ever downloaded (Playwright only
promises to work with the browser builds it downloads itself, which must never happen
here). Selenium's own driver manager is kept offline too (``SE_OFFLINE``).

The digit is drawn with real pointer events: each row of the 28x28 image is scanned
for runs of bright pixels and every run becomes one mouse stroke (press, move, release)
on the 280x280 canvas, scaled 10x. The digit is first checked through the API with the
same strokes drawn by Pillow, so the test uses a digit the model does get right.

Skipped (with the reason) when Selenium, Chromium or chromedriver is missing, which
under CI (CI=true) fails the run: see tests/conftest.py. A
screenshot goes to the test's tmp_path, and to docs/figures/web.png when
NUMPYNN_WRITE_SCREENSHOT=1.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

CHROMIUM = os.environ.get("NUMPYNN_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("NUMPYNN_CHROMEDRIVER", "/usr/bin/chromedriver")
ROOT = Path(__file__).resolve().parents[1]
BRUSH = 19  # must match BRUSH in src/numpynn/web/static/app.js
WAIT = 60  # seconds: a guard on waits for the page, which take well under a second
SCALE = 10

selenium = pytest.importorskip("selenium", reason="the browser test needs Selenium: pip install selenium")
pytest.importorskip("PIL", reason="the web page needs Pillow")
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(f"the browser test needs {CHROMIUM} and {CHROMEDRIVER}: "
                "apt-get install -y chromium chromium-driver", allow_module_level=True)

from PIL import Image, ImageDraw  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from numpynn import datasets, web  # noqa: E402
from numpynn.models import mlp  # noqa: E402
from numpynn.recipes import Recipe, train_classifier  # noqa: E402

SAMPLE = datasets.load("mnist-sample")
Stroke = tuple[tuple[float, float], tuple[float, float]]


def strokes_for(digit: np.ndarray, threshold: int = 128) -> list[Stroke]:
    """One horizontal stroke per run of bright pixels in each row, in canvas pixels."""
    img = digit.reshape(28, 28)
    strokes = []
    for r in range(28):
        bright = np.flatnonzero(img[r] >= threshold)
        if bright.size == 0:
            continue
        breaks = np.flatnonzero(np.diff(bright) > 1)
        starts = np.concatenate([[bright[0]], bright[breaks + 1]])
        ends = np.concatenate([bright[breaks], [bright[-1]]])
        y = SCALE * r + SCALE / 2
        for c0, c1 in zip(starts, ends, strict=True):
            strokes.append(((SCALE * c0 + SCALE / 2, y), (SCALE * c1 + SCALE / 2, y)))
    return strokes


def render(strokes: list[Stroke]) -> bytes:
    """The strokes as the page draws them (white, round brush, on black), as a PNG."""
    img = Image.new("RGB", (280, 280), "black")
    draw = ImageDraw.Draw(img)
    for (x0, y0), (x1, y1) in strokes:
        draw.line([(x0, y0), (x1, y1)], fill="white", width=BRUSH)
        for x, y in ((x0, y0), (x1, y1)):
            draw.ellipse([x - BRUSH / 2, y - BRUSH / 2, x + BRUSH / 2, y + BRUSH / 2], fill="white")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def post(url: str, payload: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def server() -> Iterator[web.WebServer]:
    net = mlp((784, 128, 64, 10), seed=0)
    net, _ = train_classifier(SAMPLE, net, Recipe(epochs=4, lr=5e-3, shift=0, validation_split=0.0),
                              progress=False)
    # "watch it learn" trains the page's default network on the bundled sample, a bit shorter
    srv = web.make_server(net, "127.0.0.1", 0, source="test model",
                          train_recipe=Recipe(epochs=6, lr=5e-3, shift=1, validation_split=0.1))
    srv.start()
    yield srv
    srv.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run",
                "--disable-dev-shm-usage", "--window-size=1280,1200", "--force-device-scale-factor=1",
                "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER,
                                      log_output=str(tmp_path_factory.mktemp("chromedriver") / "log.txt"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")  # Selenium Manager: never download anything
        driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    # an exact 1280x1000 viewport (the window size includes the browser's own frame)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
    try:
        yield driver
    finally:
        driver.quit()


def pick_digit(url: str) -> tuple[int, list[Stroke], dict]:
    """The first test digit whose strokes, drawn by Pillow, the model reads right and surely."""
    for i in range(60):
        strokes = strokes_for(SAMPLE.x_test[i])
        png = "data:image/png;base64," + base64.b64encode(render(strokes)).decode()
        answer = post(url + "api/predict", {"png": png})
        if answer["digit"] == int(SAMPLE.y_test[i]) and answer["probability"] > 0.9 and len(strokes) >= 8:
            return i, strokes, answer
    raise AssertionError("the model reads none of the first 60 traced test digits right")


def draw(driver: webdriver.Chrome, canvas, strokes: list[Stroke]) -> None:
    """Mouse strokes on the canvas: press, a move every ~15 px, release. Moves are relative
    to the pointer after the first (from the canvas centre), so the driver looks the
    element up once."""
    size = canvas.size
    here = (size["width"] / 2, size["height"] / 2)
    actions = ActionChains(driver, duration=0)
    actions.move_to_element(canvas)

    def go(x: float, y: float) -> None:
        nonlocal here
        dx, dy = round(x - here[0]), round(y - here[1])
        actions.move_by_offset(dx, dy)
        here = (here[0] + dx, here[1] + dy)

    for (x0, y0), (x1, y1) in strokes:
        go(x0, y0)
        actions.click_and_hold()
        steps = max(1, round(abs(x1 - x0) / 15))
        for k in range(1, steps + 1):
            go(x0 + (x1 - x0) * k / steps, y1)
        actions.release()
    actions.perform()


def ask_for_a_new_answer(driver: webdriver.Chrome) -> None:
    """Note that what comes next (a drawing, a new network) makes the page ask again: from
    here on, :func:`settled_answer` waits for the page to have asked (its answer marked
    stale, ``data-fresh="false"``) and then answered."""
    driver.execute_script("""
        const box = document.getElementById("prediction");
        window.numpynnAsked = false;
        if (!window.numpynnWatch) {
          window.numpynnWatch = new MutationObserver((records) => {
            if (box.dataset.fresh === "false" || records.some((r) => r.oldValue === "false")) {
              window.numpynnAsked = true;
            }
          });
          window.numpynnWatch.observe(box, {attributes: true, attributeFilter: ["data-fresh"],
                                            attributeOldValue: true});
        }""")


def settled_answer(driver: webdriver.Chrome, timeout: float = WAIT) -> str:
    """The prediction once the page has answered for the final drawing: it asked after
    :func:`ask_for_a_new_answer`, and its answer is for the drawing as it is now with no
    request in flight (``data-fresh="true"``, which the page sets only then)."""

    def ready(d):
        return d.execute_script("""
            const box = document.getElementById("prediction");
            return window.numpynnAsked && box.dataset.fresh === "true" && box.dataset.digit;""")

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(ready)


def canvas_ink(driver: webdriver.Chrome, element_id: str) -> float:
    return driver.execute_script(
        "const c = document.getElementById(arguments[0]);"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let s = 0; for (let i = 0; i < d.length; i += 4) s += d[i]; return s / (d.length / 4);",
        element_id)


def test_draw_a_digit_and_watch_it_learn(server, browser, tmp_path):
    index, strokes, api_answer = pick_digit(server.url)
    label = int(SAMPLE.y_test[index])

    browser.get(server.url)
    WebDriverWait(browser, WAIT).until(lambda d: "784" in d.find_element(By.ID, "model").text)
    canvas = browser.find_element(By.ID, "canvas")
    assert canvas.size == {"width": 280, "height": 280}
    assert browser.find_element(By.ID, "prediction").text == "?"

    ask_for_a_new_answer(browser)
    draw(browser, canvas, strokes)
    answer = settled_answer(browser)
    shown = browser.find_element(By.ID, "prediction").text
    print(f"drew MNIST test digit #{index} (a {label}) as {len(strokes)} strokes; "
          f"the API said {api_answer['digit']} ({100 * api_answer['probability']:.1f}%), "
          f"the page says {answer}: {browser.find_element(By.ID, 'confidence').text}")
    assert answer == shown == str(label)

    bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar")
    assert len(bars) == 10
    top = browser.find_elements(By.CSS_SELECTOR, "#bars .bar.top .label")
    assert [t.text for t in top] == [str(label)]
    assert canvas_ink(browser, "canvas") > 10  # the strokes are on the canvas
    assert canvas_ink(browser, "seen") > 10  # the 28x28 input is shown
    assert canvas_ink(browser, "saliency") < 254.9  # some red or blue on white
    assert len(browser.find_elements(By.CSS_SELECTOR, "#hidden canvas.strip")) == 2
    browser.save_screenshot(str(tmp_path / "web-drawn.png"))

    # Watch it learn: curves and test digits fill in, then the drawing goes to the new network
    ask_for_a_new_answer(browser)  # the new network's, for the same drawing
    browser.find_element(By.ID, "train").click()
    status = browser.find_element(By.ID, "train-status")
    # the job started (it may be over already: six short epochs can end between two polls)
    WebDriverWait(browser, WAIT).until(lambda d: status.get_attribute("data-state") in ("running", "done"))
    WebDriverWait(browser, 600, poll_frequency=0.2).until(  # a guard: the training takes seconds
        lambda d: status.get_attribute("data-state") == "done")
    assert status.get_attribute("data-epoch") == "6"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#digits .digit canvas")) == 10
    assert len(browser.find_elements(By.CSS_SELECTOR, "#digits .digit.right")) >= 8
    WebDriverWait(browser, WAIT).until(lambda d: server.app.model_info()["generation"] == 2)
    new_answer = settled_answer(browser)
    print(f"after 'watch it learn' ({status.text}) the page says {new_answer}: "
          f"{browser.find_element(By.ID, 'confidence').text}")
    assert new_answer == browser.find_element(By.ID, "prediction").text == str(label)  # the drawn digit

    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors

    shot = tmp_path / "web.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    if os.environ.get("NUMPYNN_WRITE_SCREENSHOT") == "1":
        target = ROOT / "docs" / "figures" / "web.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, target)

    # Clear empties the canvas and the answer
    browser.find_element(By.ID, "clear").click()
    assert browser.find_element(By.ID, "prediction").text == "?"
    assert browser.find_element(By.ID, "prediction").get_attribute("data-digit") == ""
    assert canvas_ink(browser, "canvas") == 0
    assert canvas_ink(browser, "seen") == 0


def test_backprop_view_choose_a_target_and_take_one_step(server, browser, tmp_path):
    """Draw a digit, choose another target digit, watch δ flow back layer by layer, take one
    step: the page shows the probabilities /api/explain gives for that drawing and target after
    θ ← θ − R∇θ on a copy, and the served network is unchanged."""
    index, strokes, _ = pick_digit(server.url)
    served = server.app.net
    params = served.params.copy()
    browser.get(server.url)
    WebDriverWait(browser, WAIT).until(lambda d: "784" in d.find_element(By.ID, "model").text)
    ask_for_a_new_answer(browser)
    draw(browser, browser.find_element(By.ID, "canvas"), strokes)
    digit = int(settled_answer(browser))
    flow = browser.find_element(By.ID, "bp-flow")
    # by default the target is the digit it reads; the layers light up from the output down
    WebDriverWait(browser, WAIT, poll_frequency=0.1).until(
        lambda d: flow.get_attribute("data-state") == "done" and flow.get_attribute("data-label") == str(digit))
    blocks = browser.find_elements(By.CSS_SELECTOR, "#bp-flow .bp-layer.lit")
    assert [b.get_attribute("data-index") for b in blocks] == [str(i) for i in reversed(range(len(served.layers)))]

    target = (digit + 3) % 10
    browser.find_element(By.CSS_SELECTOR, f'#bp-targets button[data-label="{target}"]').click()
    WebDriverWait(browser, WAIT, poll_frequency=0.1).until(
        lambda d: flow.get_attribute("data-state") == "done" and flow.get_attribute("data-label") == str(target))
    after = browser.find_element(By.ID, "bp-after")
    assert after.get_attribute("data-state") == "hidden"
    browser.find_element(By.ID, "bp-step").click()
    WebDriverWait(browser, WAIT, poll_frequency=0.1).until(
        lambda d: after.get_attribute("data-state") == "shown" and after.get_attribute("data-label") == str(target))
    rows = browser.find_elements(By.CSS_SELECTOR, "#bp-after .bar")
    shown_after = [float(r.get_attribute("data-p")) for r in rows]
    shown_before = [float(r.get_attribute("data-before")) for r in rows]
    assert len(rows) == 10 and shown_after[target] > shown_before[target]
    assert "→" in rows[target].text
    png = browser.execute_script("return document.getElementById('canvas').toDataURL('image/png');")
    api_answer = post(server.url + "api/explain", {"png": png, "label": target})
    assert shown_after == api_answer["after_step"] and shown_before == api_answer["probabilities"]
    assert float(after.get_attribute("data-lr")) == api_answer["lr"]
    assert canvas_ink(browser, "bp-input") < 254.9  # ∂C/∂x painted in red and blue on white
    assert len(browser.find_elements(By.CSS_SELECTOR, "#bp-weights canvas")) == 10
    assert server.app.net is served
    np.testing.assert_array_equal(served.params, params)  # the served network never changes
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    browser.save_screenshot(str(tmp_path / "web-backprop.png"))
    print(f"drew test digit #{index}, read as {digit}; one step towards {target} at R = {api_answer['lr']}: "
          f"p({target}) {shown_before[target]:.4f} -> {shown_after[target]:.4f}")
