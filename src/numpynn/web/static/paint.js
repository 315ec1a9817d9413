// numpynn · the page's painters: 28x28 images, the saliency map, hidden layers, gradients
// (signed values, red and blue) and the learning curves, each on a canvas it is handed.
// Loaded before app.js, which uses them through window.numpynnPaint; this file touches
// nothing else on the page.
"use strict";

window.numpynnPaint = (() => {
  // ------------------------------------------------------------------ pixels
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

  function paintSaliency(target, s, input, top) {
    const g = target.getContext("2d");
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

  // ------------------------------------------------------------------ hidden layers
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

  // ------------------------------------------------------------------ signed values (gradients)
  // red for positive, blue for negative, white for 0, scaled by `top` (the largest |value| shown)
  function signed(v, top) {
    if (v == null) return [255, 255, 255];
    const t = Math.min(1, Math.abs(v) / (top || 1));
    const [cr, cg, cb] = v >= 0 ? [215, 38, 61] : [31, 111, 235];
    return [255 + (cr - 255) * t, 255 + (cg - 255) * t, 255 + (cb - 255) * t];
  }

  // values: a flat list (width x height, row-major) painted on a canvas of that size
  function paintSigned(target, values, top) {
    const g = target.getContext("2d");
    const img = g.createImageData(target.width, target.height);
    const n = target.width * target.height;
    for (let i = 0; i < n; i++) {
      const [r, gr, b] = values ? signed(values[i], top) : [255, 255, 255];
      img.data[4 * i] = r;
      img.data[4 * i + 1] = gr;
      img.data[4 * i + 2] = b;
      img.data[4 * i + 3] = 255;
    }
    g.putImageData(img, 0, 0);
  }

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

  function drawCurves(canvas, s) {
    const { g, w, h } = setupHiDPI(canvas);
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

  return Object.freeze({ paintGrey, paintSaliency, paintStrip, paintMap, paintSigned, drawCurves });
})();
