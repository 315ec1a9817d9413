// numpynn · draw a digit, watch it think. Plain JavaScript, no build step, no network
// access beyond this page's own server (see numpynn/web/api.py for the JSON API).
// The painters (images, saliency, hidden layers, gradients, curves) are in paint.js, loaded first.
"use strict";

(() => {
  const { paintGrey, paintSaliency, paintStrip, paintMap, paintSigned, drawCurves } = window.numpynnPaint;
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
    clearBackprop();
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
      const png = canvas.toDataURL("image/png");
      const answer = await postJSON("/api/predict", { png });
      if (sent >= shownVersion && hasInk) {
        shownVersion = sent;
        if (answer.ok) show(answer.body);
        else showProblem(answer.body.error || "the server could not read the drawing");
        if (answer.ok && !drawing && sent === version) {
          bpPng = png; // the drawing as it stands: backprop for it
          hideAfter();
          explainNow(false);
        }
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
    paintSaliency(saliencyCanvas, null, null, 1);
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
    paintSaliency(saliencyCanvas, r.saliency, r.input, r.saliency_max || 1);
    saliencyCaption.innerHTML = `Where it looks: <span class="pos">red</span> pixels make it surer of ` +
      `“${r.digit}”, <span class="neg">blue</span> ones less sure`;
    showHidden(r.layers || []);
    if (r.model) showModel(r.model);
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

  // ------------------------------------------------------------------ backprop, step by step
  // POST /api/explain: the gradient of the loss for target K, layer by layer (numpynn.explain),
  // shown from the output down to the input one layer at a time; "Take one step" shows the
  // probabilities after θ ← θ − R∇θ on a copy of the served network (which never changes).
  const bpTargets = $("bp-targets");
  const bpLr = $("bp-lr");
  const bpStep = $("bp-step");
  const bpReplay = $("bp-replay");
  const bpSummary = $("bp-summary");
  const bpFlow = $("bp-flow");
  const bpInput = $("bp-input");
  const bpWeights = $("bp-weights");
  const bpWeightsTitle = $("bp-weights-title");
  const bpAfter = $("bp-after");
  const bpStepNote = $("bp-step-note");
  const FLOW_MS = 180; // between two layers lighting up

  let bpLabel = null; // null: the digit the network reads
  let bpPng = null; // the drawing backprop is shown for
  let bpTicket = 0; // each request's number: an answer to an older one is dropped
  let bpTimer = null;
  let bpLast = null;

  for (let k = 0; k < 10; k++) {
    const b = document.createElement("button");
    b.type = "button";
    b.dataset.label = String(k);
    b.textContent = String(k);
    bpTargets.appendChild(b);
  }

  bpTargets.addEventListener("click", (event) => {
    const b = event.target.closest("button");
    if (!b) return;
    bpLabel = b.dataset.label === "auto" ? null : Number(b.dataset.label);
    for (const other of bpTargets.children) other.classList.toggle("on", other === b);
    hideAfter();
    explainNow(false);
  });
  bpLr.addEventListener("change", () => {
    hideAfter();
    explainNow(false);
  });
  bpStep.addEventListener("click", () => explainNow(true));
  bpReplay.addEventListener("click", () => {
    if (bpLast) flow();
  });

  function hideAfter() {
    bpAfter.dataset.state = "hidden";
    for (const row of bpAfter.children) {
      row.querySelector(".fill.after").style.width = "0%";
      row.querySelector(".pct").textContent = row.dataset.beforeText || "–";
    }
  }

  function clearBackprop() {
    bpPng = null;
    bpLast = null;
    bpTicket += 1;
    clearTimeout(bpTimer);
    bpFlow.textContent = "";
    bpFlow.dataset.state = "idle";
    bpFlow.dataset.label = "";
    bpAfter.textContent = "";
    bpAfter.dataset.state = "hidden";
    bpWeights.textContent = "";
    paintSigned(bpInput, null, 1);
    bpStep.disabled = bpReplay.disabled = true;
    bpSummary.textContent = "Draw a digit: the gradient of the loss for a target digit flows back from " +
      "the output to the input, one layer at a time.";
  }

  async function explainNow(step) {
    if (!bpPng) return;
    const ticket = ++bpTicket;
    const body = { png: bpPng, label: bpLabel, lr: bpLr.value === "auto" ? null : Number(bpLr.value) };
    if (step) bpStep.disabled = true;
    try {
      const answer = await postJSON("/api/explain", body);
      if (ticket !== bpTicket) return;
      if (!answer.ok) {
        bpSummary.textContent = answer.body.error || "the server could not explain this drawing";
        return;
      }
      showBackprop(answer.body, step);
    } catch (err) {
      if (ticket === bpTicket) bpSummary.textContent = "the server does not answer";
    } finally {
      if (ticket === bpTicket) bpStep.disabled = false;
    }
  }

  const fmt = (v) => (v == null ? "–" : Math.abs(v) >= 0.01 || v === 0 ? v.toFixed(3) : v.toExponential(2));
  const pct = (p) => (p >= 0.001 ? `${(100 * p).toFixed(1)}%` : "0%");

  function largest(rows) {
    let top = 0;
    const visit = (v) => {
      if (Array.isArray(v)) v.forEach(visit);
      else if (v != null && Math.abs(v) > top) top = Math.abs(v);
    };
    visit(rows);
    return top || 1;
  }

  // one row of pictures: a layer's activations, ∂C/∂y, and δ = ∂C/∂z when it has one
  function pictures(layer) {
    const pair = document.createElement("div");
    pair.className = "bp-pair";
    const kinds = [["values", "activations y"], ["grad", "∂C/∂y arriving"]];
    if (layer.delta) kinds.push(["delta", "δ = ∂C/∂z"]);
    pair.style.gridTemplateColumns = `repeat(${kinds.length}, 1fr)`;
    for (const [key, tag] of kinds) {
      const cell = document.createElement("div");
      cell.dataset.kind = key;
      const label = document.createElement("div");
      label.className = "tag";
      label.textContent = tag;
      cell.appendChild(label);
      const data = layer[key];
      if (layer.view === "maps") {
        const maps = document.createElement("div");
        maps.className = "maps";
        let lo = 0;
        let hi = 0;
        if (key === "values") {
          for (const ch of data) for (const row of ch) for (const v of row) {
            if (v != null && v < lo) lo = v;
            if (v != null && v > hi) hi = v;
          }
        }
        const top = largest(data);
        for (const ch of data) {
          const map = document.createElement("canvas");
          map.className = key === "values" ? "map" : "map signed";
          map.height = ch.length;
          map.width = ch[0].length;
          if (key === "values") paintMap(map, ch, lo, hi);
          else paintSigned(map, ch.flat(), top);
          maps.appendChild(map);
        }
        cell.appendChild(maps);
      } else {
        const strip = document.createElement("canvas");
        strip.className = key === "values" ? "strip" : "strip signed";
        strip.width = data.length;
        strip.height = 1;
        if (key === "values") paintStrip(strip, data, layer.activation);
        else paintSigned(strip, data, largest(data));
        cell.appendChild(strip);
      }
      pair.appendChild(cell);
    }
    return pair;
  }

  function showBackprop(r, step) {
    bpLast = r;
    const auto = bpLabel === null;
    const what = r.loss_name === "cross_entropy" ? `C = −log p(${r.label})` : `C (${r.loss_name})`;
    bpSummary.textContent = `Target K = ${r.label}${auto ? " (the digit it reads)" : ""} · ${what} = ` +
      `${r.loss.toFixed(4)} · p(${r.label}) = ${pct(r.probabilities[r.label])}. The gradient flows ` +
      "from the output (top) down to the input.";
    // the layers, output first
    bpFlow.textContent = "";
    for (const layer of [...r.layers].reverse()) {
      const block = document.createElement("div");
      block.className = "bp-layer";
      block.dataset.index = String(layer.index);
      const head = document.createElement("div");
      head.className = "strip-label";
      const name = document.createElement("b");
      const act = layer.activation && layer.activation !== "identity" ? ` ${layer.activation}` : "";
      name.textContent = `Layer ${layer.index} · ${layer.type}${act} · ${layer.output_shape.join("×")}`;
      const norms = document.createElement("span");
      norms.className = "norms";
      norms.textContent = `‖∂C/∂y‖ = ${fmt(layer.output_grad_norm)} · ‖∇θ‖ = ${fmt(layer.param_grad_norm)}`;
      head.append(name, norms);
      const eq = document.createElement("div");
      eq.className = "eq";
      eq.textContent = layer.passes ? `passes its input through: ${layer.equation}` : layer.equation;
      block.append(head, eq);
      if (layer.view !== "none") block.appendChild(pictures(layer));
      bpFlow.appendChild(block);
    }
    // the input's gradient and the first layer's ∇W
    paintSigned(bpInput, r.input_grad, r.input_grad_max || 1);
    bpWeights.textContent = "";
    const first = r.first_layer;
    if (first) {
      const [h, w] = first.shape;
      const top = largest(first.grads);
      first.grads.forEach((g, k) => {
        const c = document.createElement("canvas");
        c.width = w;
        c.height = h;
        const pick = first.picks[k];
        c.title = first.kind === "units" ? `unit ${pick}: ‖∇W‖ = ${fmt(first.norms[k])}`
          : `filter ${pick[0]} (input channel ${pick[1]}): ‖∇W‖ = ${fmt(first.norms[k])}`;
        paintSigned(c, g, top);
        bpWeights.appendChild(c);
      });
      bpWeightsTitle.querySelector("span").textContent = first.kind === "units"
        ? `layer ${first.index}: the ${first.picks.length} units it changes most`
        : `layer ${first.index}: ${first.picks.length} filters`;
    }
    // probabilities before, and after one step
    bpAfter.textContent = "";
    r.probabilities.forEach((p, k) => {
      const row = document.createElement("div");
      row.className = `bar${k === r.label ? " target" : ""}`;
      row.dataset.p = String(r.after_step[k]);
      row.dataset.before = String(p);
      row.dataset.beforeText = pct(p);
      row.innerHTML = `<span class="label">${k}</span><span class="track"><span class="fill"></span></span>` +
        `<span class="track"><span class="fill after"></span></span><span class="pct"></span>`;
      row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
      bpAfter.appendChild(row);
    });
    bpAfter.dataset.label = String(r.label);
    bpAfter.dataset.lr = String(r.lr);
    if (step) {
      r.after_step.forEach((p, k) => {
        const row = bpAfter.children[k];
        row.querySelector(".fill.after").style.width = `${(100 * p).toFixed(1)}%`;
        row.querySelector(".pct").textContent = `${pct(r.probabilities[k])} → ${pct(p)}`;
      });
      bpAfter.dataset.state = "shown";
      bpStepNote.textContent = `before · after θ ← θ − R∇θ with R = ${r.lr}, on a copy`;
    } else {
      hideAfter();
      bpStepNote.textContent = "before · after one step (press “Take one step”)";
    }
    bpAfter.title = r.lr_rule;
    bpStep.disabled = bpReplay.disabled = false;
    flow();
  }

  // light the layers up one at a time, from the output down to the input
  function flow() {
    clearTimeout(bpTimer);
    const blocks = [...bpFlow.children];
    blocks.forEach((b) => b.classList.remove("lit"));
    bpFlow.dataset.state = "flowing";
    bpFlow.dataset.label = "";
    let k = 0;
    const next = () => {
      if (k < blocks.length) {
        blocks[k].classList.add("lit");
        k += 1;
        bpTimer = setTimeout(next, FLOW_MS);
        return;
      }
      bpTimer = null;
      bpFlow.dataset.label = String(bpLast.label);
      bpFlow.dataset.state = "done";
    };
    next();
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
    drawCurves(curvesCanvas, s);
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

  // ------------------------------------------------------------------ start
  blank();
  showEmpty();
  clearBackprop();
  drawCurves(curvesCanvas, null);
  window.addEventListener("resize", () => drawCurves(curvesCanvas, lastStatus));
  getJSON("/api/model").then(showModel).catch(() => {
    modelEl.textContent = "The server does not answer.";
  });
  getJSON("/api/train/status?pixels=1").then((s) => {
    if (s.digits && s.digits.pixels) buildDigits(s.digits);
    if (s.state !== "idle") showStatus(s);
    if (s.state === "running" && polling === null) polling = setTimeout(poll, POLL_MS);
  }).catch(() => {});
})();
