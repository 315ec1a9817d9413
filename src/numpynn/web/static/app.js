// numpynn · draw a digit, watch it think. Plain JavaScript, no build step, no network
// access beyond this page's own server (see numpynn/web/api.py for the JSON API).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const predictionEl = $("prediction");
  const confidenceEl = $("confidence");
  const messageEl = $("message");
  const barsEl = $("bars");
  const seenCanvas = $("seen");
  const saliencyCanvas = $("saliency");
  const saliencyCaption = $("saliency-caption");
  const hiddenEl = $("hidden");
  const trainButton = $("train");
  const trainStatus = $("train-status");
  const curvesCanvas = $("curves");
  const digitsEl = $("digits");
  const modelEl = $("model");

  const BRUSH = 19; // px on the 280x280 canvas: MNIST-like strokes once scaled to 20x20
  const THROTTLE_MS = 150; // at most one prediction request per this while drawing
  const POLL_MS = 350; // training status while a job runs

  // ------------------------------------------------------------------ drawing
  let drawing = false;
  let last = null;
  let hasInk = false;
  let version = 0; // bumped on every change of the drawing
  let shownVersion = 0; // the version whose prediction is on screen
  let inFlight = false;
  let lastSent = 0;
  let timer = null;
  let modelGeneration = -1;

  function blank() {
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.restore();
  }

  function point(event) {
    const r = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - r.left) * canvas.width) / r.width,
      y: ((event.clientY - r.top) * canvas.height) / r.height,
    };
  }

  function dot(p) {
    ctx.fillStyle = "#fff";
    ctx.beginPath();
    ctx.arc(p.x, p.y, BRUSH / 2, 0, 2 * Math.PI);
    ctx.fill();
  }

  function line(a, b) {
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = BRUSH;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
    ctx.stroke();
  }

  function changed() {
    hasInk = true;
    version += 1;
    markFresh();
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (event.button !== undefined && event.button > 0) return;
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    drawing = true;
    last = point(event);
    dot(last);
    changed();
    schedule();
  });

  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    event.preventDefault();
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const e of events.length ? events : [event]) {
      const p = point(e);
      line(last, p);
      last = p;
    }
    changed();
    schedule();
  });

  function endStroke(event) {
    if (!drawing) return;
    drawing = false;
    last = null;
    if (canvas.hasPointerCapture && canvas.hasPointerCapture(event.pointerId)) {
      canvas.releasePointerCapture(event.pointerId);
    }
    predictNow();
  }
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);
  canvas.addEventListener("contextmenu", (e) => e.preventDefault());

  $("clear").addEventListener("click", () => {
    blank();
    hasInk = false;
    version += 1;
    shownVersion = version;
    clearTimeout(timer);
    timer = null;
    showEmpty();
  });

  // ------------------------------------------------------------------ predicting
  function schedule() {
    if (timer !== null) return;
    const wait = Math.max(0, THROTTLE_MS - (performance.now() - lastSent));
    timer = setTimeout(() => {
      timer = null;
      predictNow();
    }, wait);
  }

  function markFresh() {
    const fresh = !inFlight && !drawing && shownVersion === version;
    predictionEl.dataset.fresh = fresh ? "true" : "false";
  }

  async function predictNow() {
    if (!hasInk) return;
    if (inFlight) return; // the answer handler sends again if the drawing moved on
    clearTimeout(timer);
    timer = null;
    const sent = version;
    inFlight = true;
    lastSent = performance.now();
    markFresh();
    try {
      const answer = await postJSON("/api/predict", { png: canvas.toDataURL("image/png") });
      if (sent >= shownVersion && hasInk) {
        shownVersion = sent;
        if (answer.ok) show(answer.body);
        else showProblem(answer.body.error || "the server could not read the drawing");
      }
    } catch (err) {
      showProblem("the server does not answer: is numpynn serve still running?");
      shownVersion = sent;
    } finally {
      inFlight = false;
      if (hasInk && version !== shownVersion) {
        if (drawing) schedule();
        else predictNow();
      }
      markFresh();
    }
  }

  async function postJSON(url, body) {
    const response = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let parsed = {};
    try {
      parsed = await response.json();
    } catch (e) {
      parsed = { error: `HTTP ${response.status}` };
    }
    return { ok: response.ok, status: response.status, body: parsed };
  }

  async function getJSON(url) {
    const response = await fetch(url, { cache: "no-store" });
    return response.json();
  }

  // ------------------------------------------------------------------ showing
  function buildBars(n) {
    barsEl.textContent = "";
    for (let k = 0; k < n; k++) {
      const row = document.createElement("div");
      row.className = "bar";
      row.innerHTML = `<span class="label">${k}</span><span class="track"><span class="fill"></span></span>` +
        `<span class="pct">–</span>`;
      barsEl.appendChild(row);
    }
  }
  buildBars(10);

  function showEmpty() {
    predictionEl.textContent = "?";
    predictionEl.classList.add("empty");
    predictionEl.dataset.digit = "";
    confidenceEl.textContent = "Draw a digit to begin.";
    messageEl.textContent = "";
    for (const row of barsEl.children) {
      row.classList.remove("top");
      row.querySelector(".fill").style.width = "0%";
      row.querySelector(".pct").textContent = "–";
    }
    paintGrey(seenCanvas, null);
    paintSaliency(null, null, 1);
    saliencyCaption.innerHTML = 'Where it looks: <span class="pos">red</span> pixels push towards its ' +
      'answer, <span class="neg">blue</span> ones away';
    for (const strip of hiddenEl.querySelectorAll("canvas.strip")) paintStrip(strip, null);
    for (const map of hiddenEl.querySelectorAll("canvas.map")) paintMap(map, null, 0, 1);
    markFresh();
  }

  function showProblem(text) {
    predictionEl.textContent = "?";
    predictionEl.classList.add("empty");
    predictionEl.dataset.digit = "";
    confidenceEl.textContent = "No answer";
    messageEl.textContent = text;
  }

  function show(r) {
    const probs = r.probabilities;
    if (barsEl.children.length !== probs.length) buildBars(probs.length);
    predictionEl.textContent = String(r.digit);
    predictionEl.classList.remove("empty");
    predictionEl.dataset.digit = String(r.digit);
    confidenceEl.textContent = `${(100 * r.probability).toFixed(1)}% sure it is a ${r.digit}`;
    messageEl.textContent = "";
    probs.forEach((p, k) => {
      const row = barsEl.children[k];
      row.classList.toggle("top", k === r.digit);
      row.querySelector(".fill").style.width = `${Math.max(0, Math.min(100, 100 * p)).toFixed(1)}%`;
      row.querySelector(".pct").textContent = p >= 0.001 ? `${(100 * p).toFixed(1)}%` : "0%";
    });
    paintGrey(seenCanvas, r.input);
    paintSaliency(r.saliency, r.input, r.saliency_max || 1);
    saliencyCaption.innerHTML = `Where it looks: <span class="pos">red</span> pixels make it surer of ` +
      `“${r.digit}”, <span class="neg">blue</span> ones less sure`;
    showHidden(r.layers || []);
    if (r.model) showModel(r.model);
  }

  function paintGrey(target, values) {
    const g = target.getContext("2d");
    const img = g.createImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      const v = values ? Math.round(255 * Math.max(0, Math.min(1, values[i]))) : 0;
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
      img.data[4 * i + 3] = 255;
    }
    g.putImageData(img, 0, 0);
  }

  function paintSaliency(s, input, top) {
    const g = saliencyCanvas.getContext("2d");
    const img = g.createImageData(28, 28);
    for (let i = 0; i < 784; i++) {
      let r = 255, gr = 255, b = 255;
      if (s) {
        const t = Math.min(1, Math.abs(s[i]) / top);
        const [cr, cg, cb] = s[i] >= 0 ? [215, 38, 61] : [31, 111, 235];
        r = 255 + (cr - 255) * t;
        gr = 255 + (cg - 255) * t;
        b = 255 + (cb - 255) * t;
        const ink = input ? input[i] : 0; // a faint shadow of the digit, for orientation
        const shade = 1 - 0.3 * ink;
        r *= shade;
        gr *= shade;
        b *= shade;
      }
      img.data[4 * i] = r;
      img.data[4 * i + 1] = gr;
      img.data[4 * i + 2] = b;
      img.data[4 * i + 3] = 255;
    }
    g.putImageData(img, 0, 0);
  }

  // a perceptual dark-to-bright colour map (close to "inferno") for activations
  const STOPS = [
    [0.0, [11, 11, 20]], [0.25, [87, 16, 110]], [0.5, [188, 55, 84]],
    [0.75, [249, 142, 9]], [1.0, [252, 255, 164]],
  ];
  function heat(t) {
    t = Math.max(0, Math.min(1, t));
    for (let k = 1; k < STOPS.length; k++) {
      if (t <= STOPS[k][0]) {
        const [t0, c0] = STOPS[k - 1];
        const [t1, c1] = STOPS[k];
        const u = (t - t0) / (t1 - t0);
        return c0.map((c, j) => c + (c1[j] - c) * u);
      }
    }
    return STOPS[STOPS.length - 1][1];
  }

  // One block per hidden layer that came back, whatever their number and size: a strip of
  // coloured cells for a vector of units, small grey maps for a (C, H, W) output.
  function describeLayer(layer) {
    const act = layer.activation ? ` ${layer.activation}` : "";
    if (layer.view === "maps") {
      const [h, w] = [layer.values[0].length, layer.values[0][0].length];
      const c = layer.values.length;
      return `${layer.type} · ${c} map${c === 1 ? "" : "s"} of ${h}×${w}${act ? ` (${act.trim()})` : ""}`;
    }
    return `${layer.type} · ${layer.values.length}${act} units`;
  }

  function layoutKey(layers) {
    return JSON.stringify(layers.map((l) => [l.index, l.type, l.view, l.shape]));
  }

  function showHidden(layers) {
    const key = layoutKey(layers);
    if (hiddenEl.dataset.key !== key) {
      hiddenEl.dataset.key = key;
      hiddenEl.textContent = "";
      layers.forEach((layer, i) => {
        const block = document.createElement("div");
        block.className = "layer";
        block.dataset.index = String(layer.index);
        block.dataset.view = layer.view;
        const label = document.createElement("div");
        label.className = "strip-label";
        const name = document.createElement("b");
        name.textContent = `Hidden layer ${i + 1}`;
        const what = document.createElement("span");
        what.textContent = describeLayer(layer);
        label.append(name, what);
        block.title = `layer ${layer.index} of the network, output ${layer.shape.join("×")}`;
        block.appendChild(label);
        if (layer.view === "maps") {
          const maps = document.createElement("div");
          maps.className = "maps";
          for (const channel of layer.values) {
            const map = document.createElement("canvas");
            map.className = "map";
            map.height = channel.length;
            map.width = channel[0].length;
            maps.appendChild(map);
          }
          block.appendChild(maps);
        } else {
          const strip = document.createElement("canvas");
          strip.className = "strip";
          strip.width = layer.values.length;
          strip.height = 1;
          block.appendChild(strip);
        }
        block.id = `hidden-${i + 1}`;
        hiddenEl.appendChild(block);
      });
    }
    layers.forEach((layer, i) => {
      const block = hiddenEl.children[i];
      if (layer.view === "maps") {
        // one grey scale for all of a layer's maps, so that channels compare
        let lo = 0;
        let hi = 0;
        for (const channel of layer.values) {
          for (const row of channel) {
            for (const v of row) {
              if (v == null) continue;
              if (v < lo) lo = v;
              if (v > hi) hi = v;
            }
          }
        }
        block.querySelectorAll("canvas.map").forEach((map, c) => paintMap(map, layer.values[c], lo, hi));
      } else {
        paintStrip(block.querySelector("canvas.strip"), layer.values, layer.activation);
      }
    });
  }

  function paintStrip(strip, units, name) {
    const g = strip.getContext("2d");
    const img = g.createImageData(strip.width, 1);
    // sigmoid units live in [0, 1]; anything else is scaled by its largest |value|
    let top = 1;
    if (units && name !== "sigmoid") {
      top = 1e-9;
      for (const v of units) if (v != null && Math.abs(v) > top) top = Math.abs(v);
    }
    for (let i = 0; i < strip.width; i++) {
      const [r, gr, b] = units ? heat(Math.abs(units[i] || 0) / top) : [11, 11, 20];
      img.data[4 * i] = r;
      img.data[4 * i + 1] = gr;
      img.data[4 * i + 2] = b;
      img.data[4 * i + 3] = 255;
    }
    g.putImageData(img, 0, 0);
  }

  // a map of H rows of W values, from lo (black) to hi (white); null: all black
  function paintMap(map, rows, lo, hi) {
    const g = map.getContext("2d");
    const img = g.createImageData(map.width, map.height);
    const span = hi - lo || 1;
    for (let y = 0; y < map.height; y++) {
      for (let x = 0; x < map.width; x++) {
        const v = rows ? rows[y][x] : null;
        const grey = v == null ? 0 : Math.round((255 * (v - lo)) / span);
        const k = 4 * (y * map.width + x);
        img.data[k] = img.data[k + 1] = img.data[k + 2] = grey;
        img.data[k + 3] = 255;
      }
    }
    g.putImageData(img, 0, 0);
  }

  function showModel(m) {
    if (!m.loaded) {
      modelEl.textContent = "No model yet: press “Watch it learn” to train one";
      return;
    }
    const acc = m.test_accuracy != null ? ` · ${(100 * m.test_accuracy).toFixed(1)}% on test digits` : "";
    const hidden = [...new Set(m.activations.slice(0, -1))].join(", ");
    const shape = (m.description || m.sizes.join("-")).replaceAll("-", "–").replaceAll("x", "×");
    modelEl.textContent = `Model: ${shape}${hidden ? ` (${hidden})` : ""}${acc}`;
    modelEl.title = m.source;
    modelGeneration = m.generation;
  }

  // ------------------------------------------------------------------ watch it learn
  let digitPixels = null;
  let polling = null;

  function buildDigits(digits) {
    if (!digits || !digits.pixels) return;
    digitPixels = digits;
    digitsEl.textContent = "";
    digits.pixels.forEach((pixels, i) => {
      const cell = document.createElement("div");
      cell.className = "digit";
      const c = document.createElement("canvas");
      c.width = 28;
      c.height = 28;
      paintGrey(c, pixels.map((v) => v / 255));
      const guess = document.createElement("div");
      guess.className = "guess";
      guess.textContent = "·";
      const prob = document.createElement("div");
      prob.className = "prob";
      prob.textContent = "";
      cell.title = `a ${digits.labels[i]} from the test set`;
      cell.append(c, guess, prob);
      digitsEl.appendChild(cell);
    });
  }

  function showPredictions(status) {
    if (!digitPixels) return;
    status.predictions.forEach((p, i) => {
      const cell = digitsEl.children[i];
      if (!cell) return;
      const right = p.digit === digitPixels.labels[i];
      cell.className = `digit ${right ? "right" : "wrong"}`;
      cell.querySelector(".guess").textContent = `→ ${p.digit}`;
      cell.querySelector(".prob").textContent = `${Math.round(100 * p.probability)}%`;
      cell.title = `a ${digitPixels.labels[i]}, read as ${p.digit} (${Math.round(100 * p.probability)}% sure)`;
    });
  }

  let lastStatus = null;

  function showStatus(s) {
    lastStatus = s;
    trainStatus.dataset.state = s.state;
    trainStatus.dataset.epoch = String(s.epoch);
    const h = s.history;
    // the validation split's accuracy (training accuracy only when the recipe holds none out)
    const last = (xs) => (xs && xs.length ? xs[xs.length - 1] : null);
    const valAcc = last(h.val_accuracy);
    const trainAcc = last(h.accuracy);
    const acc = valAcc != null ? `, validation accuracy ${(100 * valAcc).toFixed(1)}%`
      : (trainAcc != null ? `, training accuracy ${(100 * trainAcc).toFixed(1)}%` : "");
    const net = s.layers.join("–");
    if (s.state === "running") {
      trainStatus.textContent = `Training a fresh ${net} network: epoch ${s.epoch} of ${s.epochs}${acc}…`;
    } else if (s.state === "done") {
      trainStatus.textContent = `Done in ${s.seconds.toFixed(1)} s${acc}. Your drawing now goes to this ` +
        "new network: draw again!";
    } else if (s.state === "failed") {
      trainStatus.textContent = `Training failed: ${s.error}`;
    } else if (s.state === "stopped") {
      trainStatus.textContent = `Training stopped after ${s.epoch} epochs; the previous model stays.`;
    }
    trainButton.disabled = s.state === "running";
    trainButton.textContent = s.state === "running" ? "Learning…" : (s.epoch ? "Train again" : "Watch it learn");
    drawCurves(s);
    showPredictions(s);
  }

  async function poll() {
    try {
      const s = await getJSON("/api/train/status");
      showStatus(s);
      if (s.state === "running") {
        polling = setTimeout(poll, POLL_MS);
        return;
      }
      polling = null;
      if (s.model_generation !== modelGeneration) {
        showModel(await getJSON("/api/model"));
        if (hasInk) {
          version += 1; // same drawing, new network: ask again
          predictNow();
        }
      }
    } catch (e) {
      trainStatus.textContent = "Lost contact with the server.";
      polling = null;
    }
  }

  trainButton.addEventListener("click", async () => {
    trainButton.disabled = true;
    try {
      const answer = await postJSON("/api/train", {});
      if (!answer.ok) {
        trainStatus.textContent = answer.body.error || "could not start training";
        if (answer.status === 409 && polling === null) poll();
        else trainButton.disabled = false;
        return;
      }
      buildDigits(answer.body.digits);
      showStatus(answer.body);
      if (polling === null) polling = setTimeout(poll, POLL_MS);
    } catch (e) {
      trainStatus.textContent = "The server does not answer.";
      trainButton.disabled = false;
    }
  });

  // ------------------------------------------------------------------ curves
  function setupHiDPI(c) {
    const ratio = window.devicePixelRatio || 1;
    const w = c.clientWidth || c.width;
    const h = c.clientHeight || c.height;
    if (c.width !== Math.round(w * ratio)) {
      c.width = Math.round(w * ratio);
      c.height = Math.round(h * ratio);
    }
    const g = c.getContext("2d");
    g.setTransform(c.width / w, 0, 0, c.height / h, 0, 0);
    return { g, w, h };
  }

  // a round tick step near range/4: 1, 2, 2.5 or 5 times a power of ten
  function niceStep(range) {
    const raw = Math.max(range, 1e-9) / 4;
    const power = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
    return 10 * power;
  }

  function drawCurves(s) {
    const { g, w, h } = setupHiDPI(curvesCanvas);
    g.clearRect(0, 0, w, h);
    const hist = s ? s.history : { epoch: [], loss: [], val_loss: [], accuracy: [], val_accuracy: [] };
    const epochs = Math.max(s ? s.epochs : 10, 1);
    const gap = 28;
    const panel = (w - gap) / 2;
    const finite = (xs) => xs.filter((v) => v != null);
    const lossMax = Math.max(0.5, ...finite(hist.loss), ...finite(hist.val_loss));
    const lossStep = niceStep(lossMax);
    const minAcc = Math.min(0.8, ...finite(hist.val_accuracy), ...finite(hist.accuracy));
    const accStep = niceStep(1 - minAcc);
    plot(g, 0, panel, h, "Loss (cross-entropy) per epoch", epochs, 0, Math.ceil(lossMax / lossStep) * lossStep,
      lossStep, [
        { values: hist.loss, colour: "#4f46e5", label: "training" },
        { values: hist.val_loss, colour: "#f59e0b", label: "validation" },
      ], (v) => String(Math.round(v * 100) / 100), hist.epoch);
    plot(g, panel + gap, panel, h, "Accuracy per epoch", epochs, Math.floor(minAcc / accStep) * accStep, 1,
      accStep, [
        { values: hist.accuracy, colour: "#4f46e5", label: "training" },
        { values: hist.val_accuracy, colour: "#f59e0b", label: "validation" },
      ], (v) => `${Math.round(100 * v)}%`, hist.epoch);
  }

  function plot(g, x0, width, height, title, epochs, lo, hi, step, series, fmt, xs) {
    const left = x0 + 38;
    const right = x0 + width - 6;
    const top = 40;
    const bottom = height - 22;
    const X = (e) => left + ((right - left) * e) / epochs;
    const Y = (v) => bottom - ((bottom - top) * (v - lo)) / (hi - lo || 1);
    g.font = "600 12px system-ui, sans-serif";
    g.fillStyle = "#1c2230";
    g.textBaseline = "alphabetic";
    g.textAlign = "left";
    g.fillText(title, x0, 13);
    g.font = "11px system-ui, sans-serif";
    g.strokeStyle = "#e4e7ee";
    g.fillStyle = "#6b7385";
    g.lineWidth = 1;
    for (let v = lo; v <= hi + step / 1000; v += step) {
      const y = Math.round(Y(v)) + 0.5;
      g.beginPath();
      g.moveTo(left, y);
      g.lineTo(right, y);
      g.stroke();
      g.textAlign = "right";
      g.textBaseline = "middle";
      g.fillText(fmt(v), left - 6, y);
    }
    g.textAlign = "center";
    g.textBaseline = "top";
    const every = epochs > 12 ? Math.ceil(epochs / 6) : (epochs > 6 ? 2 : 1);
    for (let e = 0; e <= epochs; e += every) g.fillText(String(e), X(e), bottom + 6);
    // legend, under the title
    let lx = x0;
    g.textBaseline = "middle";
    g.textAlign = "left";
    for (const s of series) {
      g.fillStyle = s.colour;
      g.fillRect(lx, 25, 12, 3);
      g.fillStyle = "#6b7385";
      g.fillText(s.label, lx + 16, 27);
      lx += 16 + g.measureText(s.label).width + 14;
    }
    for (const s of series) {
      const pts = s.values.map((v, i) => [xs[i], v]).filter(([, v]) => v != null);
      if (!pts.length) continue;
      g.strokeStyle = s.colour;
      g.fillStyle = s.colour;
      g.lineWidth = 2;
      g.lineJoin = "round";
      g.beginPath();
      pts.forEach(([e, v], i) => (i ? g.lineTo(X(e), Y(v)) : g.moveTo(X(e), Y(v))));
      g.stroke();
      for (const [e, v] of pts) {
        g.beginPath();
        g.arc(X(e), Y(v), 2.5, 0, 2 * Math.PI);
        g.fill();
      }
    }
  }

  // ------------------------------------------------------------------ start
  blank();
  showEmpty();
  drawCurves(null);
  window.addEventListener("resize", () => drawCurves(lastStatus));
  getJSON("/api/model").then(showModel).catch(() => {
    modelEl.textContent = "The server does not answer.";
  });
  getJSON("/api/train/status?pixels=1").then((s) => {
    if (s.digits && s.digits.pixels) buildDigits(s.digits);
    if (s.state !== "idle") showStatus(s);
    if (s.state === "running" && polling === null) polling = setTimeout(poll, POLL_MS);
  }).catch(() => {});
})();
