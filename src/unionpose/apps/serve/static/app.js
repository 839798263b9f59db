"use strict";
// The UnionPose page: drop images or a short video, and each model's people are drawn as `unionpose predict` draws
// them (the skeleton's own colours from GET /v1/models), with keypoint names and scores on hover, part toggles, a
// table of people, two models side by side, and the results as COCO JSON and OpenPose JSON (made by the server).
// A video is sampled here, in the browser: VIDEO_FRAMES frames evenly spread over it, each sent as a JPEG image,
// so the server only ever decodes JPEG and PNG.

const VIDEO_FRAMES = 12;
const RETRIES = 5;              // a 503 (the model's queue is full) is retried after its Retry-After
const BOX_COLOR = "#c8c8c8";    // the box colour of `unionpose predict`'s drawings

const state = {
  models: new Map(),            // name -> entry of GET /v1/models
  items: [],                    // {name, index, label, blob, bitmap}: the images and sampled frames
  current: 0,                   // the item on show
  panels: [],                   // one per model column
  hiddenParts: new Set(),
  threshold: 0.3,
  generation: 0,                // bumped when the items change, so that stale answers are dropped
};

function setStatus(text, isError = false) {
  const element = document.getElementById("status");
  element.textContent = text;
  element.classList.toggle("error", isError);
}

function errorText(body, response) {
  const detail = body && body.detail;
  if (Array.isArray(detail)) {   // the framework's validation errors
    return detail.map((error) => `${(error.loc || []).join(".")}: ${error.msg}`).join("; ");
  }
  return `${response.status} ${detail || response.statusText}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function once(target, event) {
  return new Promise((resolve, reject) => {
    target.addEventListener(event, resolve, { once: true });
    target.addEventListener("error", () => reject(new Error("the browser cannot play this video")), { once: true });
  });
}

// --- panels ---------------------------------------------------------------------------------------------------
function makePanel(modelName) {
  const root = document.getElementById("panel-template").content.firstElementChild.cloneNode(true);
  const panel = {
    root, model: modelName, results: new Map(),
    select: root.querySelector("select.model"), canvas: root.querySelector("canvas"),
    tooltip: root.querySelector(".tooltip"), note: root.querySelector(".note"),
    body: root.querySelector("tbody"), drawn: [],
  };
  for (const name of state.models.keys()) {
    panel.select.append(new Option(name, name, false, name === modelName));
  }
  panel.select.addEventListener("change", () => {
    panel.model = panel.select.value;
    panel.results.clear();
    renderParts();
    predictAll(panel, state.generation);
  });
  panel.canvas.addEventListener("mousemove", (event) => hover(panel, event));
  panel.canvas.addEventListener("mouseleave", () => hover(panel, null));
  root.querySelector(".download-coco").addEventListener("click", () => downloadCoco(panel));
  root.querySelector(".download-openpose").addEventListener("click", () => downloadOpenPose(panel));
  document.getElementById("panels").append(root);
  return panel;
}

const activePanels = () => state.panels.filter((panel) => !panel.root.hidden);

function renderParts() {
  const fieldset = document.getElementById("parts");
  fieldset.querySelectorAll("label").forEach((label) => label.remove());
  const parts = new Set();
  for (const panel of activePanels()) {
    state.models.get(panel.model).skeleton.parts.forEach((part) => parts.add(part));
  }
  for (const part of parts) {
    const box = Object.assign(document.createElement("input"),
      { type: "checkbox", checked: !state.hiddenParts.has(part) });
    box.dataset.part = part;
    box.addEventListener("change", () => {
      if (box.checked) state.hiddenParts.delete(part); else state.hiddenParts.add(part);
      renderAll();
    });
    const label = document.createElement("label");
    label.append(box, ` ${part.replace("_", " ")}`);
    fieldset.append(label);
  }
}

// --- input: images and video frames -----------------------------------------------------------------------------
async function sampleVideo(file) {
  const url = URL.createObjectURL(file);
  const video = Object.assign(document.createElement("video"), { muted: true, preload: "auto", src: url });
  try {
    await once(video, "loadeddata");
    const duration = video.duration;
    if (!Number.isFinite(duration) || duration <= 0) throw new Error("the video has no duration");
    const canvas = Object.assign(document.createElement("canvas"),
      { width: video.videoWidth, height: video.videoHeight });
    const context = canvas.getContext("2d");
    const stem = file.name.replace(/\.[^.]*$/, "");
    const frames = [];
    for (let i = 0; i < VIDEO_FRAMES; i++) {
      const time = ((i + 0.5) * duration) / VIDEO_FRAMES;
      video.currentTime = time;
      await once(video, "seeked");
      context.drawImage(video, 0, 0);
      const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
      const name = `${stem}_frame_${String(i).padStart(6, "0")}.jpg`;
      frames.push({ name, label: `${stem} ${time.toFixed(2)} s`, blob });
    }
    return frames;
  } finally {
    URL.revokeObjectURL(url);
  }
}

async function addFiles(files) {
  const generation = ++state.generation;
  const items = [];
  const skipped = [];
  for (const file of files) {
    try {
      if (file.type.startsWith("video/")) {
        setStatus(`sampling ${file.name}…`);
        items.push(...(await sampleVideo(file)));
      } else if (/^image\/(jpeg|png)$/.test(file.type) || /\.(jpe?g|png)$/i.test(file.name)) {
        items.push({ name: file.name, label: file.name, blob: file });
      } else {
        skipped.push(`${file.name} (not a JPEG, PNG or video)`);
      }
    } catch (error) {
      skipped.push(`${file.name} (${error.message})`);
    }
  }
  for (const [index, item] of items.entries()) {
    item.index = index;
    item.bitmap = await createImageBitmap(item.blob).catch(() => null);
  }
  if (generation !== state.generation) return;
  state.items = items;
  state.current = 0;
  setStatus(skipped.length ? `skipped ${skipped.join(", ")}` : `${items.length} image(s)`, skipped.length > 0);
  renderItems();
  for (const panel of state.panels) {
    panel.results.clear();
    if (!panel.root.hidden) predictAll(panel, generation);
  }
  renderAll();
}

function renderItems() {
  const nav = document.getElementById("items");
  nav.replaceChildren(...state.items.map((item, i) => {
    const button = Object.assign(document.createElement("button"), { type: "button", textContent: item.label });
    button.classList.toggle("current", i === state.current);
    button.addEventListener("click", () => { state.current = i; renderItems(); renderAll(); });
    return button;
  }));
}

// --- the API ----------------------------------------------------------------------------------------------------
async function predict(model, item) {
  const form = new FormData();
  form.append("image", item.blob, item.name);
  form.append("model", model);
  form.append("formats", "coco,openpose");
  form.append("index", String(item.index));
  for (let attempt = 0; ; attempt++) {
    const response = await fetch("/v1/predict", { method: "POST", body: form });
    if (response.status === 503 && attempt < RETRIES) {
      await sleep(1000 * (Number(response.headers.get("Retry-After")) || 1));
      continue;
    }
    const body = await response.json().catch(() => null);
    return response.ok ? body : { error: errorText(body, response) };
  }
}

async function predictAll(panel, generation) {
  const model = panel.model;
  for (const item of state.items) {
    if (generation !== state.generation || model !== panel.model) return;   // the input or the model changed
    if (panel.results.has(item.index)) continue;
    let result;
    try {
      result = await predict(model, item);
    } catch (error) {
      result = { error: `the server did not answer (${error.message})` };
    }
    if (generation !== state.generation || model !== panel.model) return;
    panel.results.set(item.index, result);
    if (item.index === state.current) render(panel);
  }
}

// --- drawing ----------------------------------------------------------------------------------------------------
function renderAll() {
  activePanels().forEach(render);
}

function render(panel) {
  const item = state.items[state.current];
  const context = panel.canvas.getContext("2d");
  panel.drawn = [];
  panel.body.replaceChildren();
  const result = item && panel.results.get(item.index);
  panel.root.querySelector(".download-coco").disabled = !state.items.some((i) => panel.results.get(i.index)?.coco);
  panel.root.querySelector(".download-openpose").disabled = !(result && result.openpose);
  if (!item) {
    panel.root.dataset.state = "empty";
    panel.note.textContent = "no image yet";
    return;
  }
  if (item.bitmap) {
    panel.canvas.width = item.bitmap.width;
    panel.canvas.height = item.bitmap.height;
    context.drawImage(item.bitmap, 0, 0);
  } else {   // the browser cannot show it; the server may still read it (or say why not)
    context.clearRect(0, 0, panel.canvas.width, panel.canvas.height);
  }
  if (!result) {
    panel.root.dataset.state = "waiting";
    panel.note.textContent = "predicting…";
    return;
  }
  if (result.error) {
    panel.root.dataset.state = "error";
    panel.note.textContent = result.error;
    return;
  }
  const skeleton = state.models.get(result.model).skeleton;
  const size = Math.max(result.image.width, result.image.height);
  const radius = Math.max(2, Math.floor(size / 250));       // the sizes `unionpose predict` draws with
  const thickness = Math.max(1, Math.floor(size / 400));
  result.people.forEach((person, n) => {
    const shown = person.keypoints.map(([x, y, score], k) => Number.isFinite(x) && Number.isFinite(y) &&
      score >= state.threshold && !state.hiddenParts.has(skeleton.point_parts[k]));
    const [bx, by, bw, bh] = person.box;
    context.lineWidth = thickness;
    context.strokeStyle = context.fillStyle = BOX_COLOR;
    context.strokeRect(bx, by, bw, bh);
    context.font = `${Math.max(12, 4 * thickness + 8)}px sans-serif`;
    context.fillText(`${n + 1}: ${person.score.toFixed(2)}`, bx + 2, by + Math.max(14, 4 * thickness + 10));
    skeleton.links.forEach(([a, b], l) => {
      if (!shown[a] || !shown[b]) return;
      context.strokeStyle = skeleton.link_colors[l];
      context.beginPath();
      context.moveTo(person.keypoints[a][0], person.keypoints[a][1]);
      context.lineTo(person.keypoints[b][0], person.keypoints[b][1]);
      context.stroke();
    });
    person.keypoints.forEach(([x, y, score], k) => {
      if (!shown[k]) return;
      context.fillStyle = skeleton.point_colors[k];
      context.beginPath();
      context.arc(x, y, radius, 0, 2 * Math.PI);
      context.fill();
      panel.drawn.push({ x, y, person: n, name: skeleton.keypoint_names[k], score });
    });
    const visible = person.keypoints.filter((point, k) => shown[k]);
    const mean = person.keypoints.reduce((sum, point) => sum + point[2], 0) / person.keypoints.length;
    const row = panel.body.insertRow();
    [String(n + 1), person.score.toFixed(3), person.box_score.toFixed(3),
      `${visible.length} / ${person.keypoints.length}`, mean.toFixed(3),
      person.box.map((v) => v.toFixed(0)).join(", ")].forEach((text) => { row.insertCell().textContent = text; });
  });
  panel.radius = radius;
  panel.root.dataset.state = "drawn";
  panel.note.textContent = `${result.people.length} ${result.people.length === 1 ? "person" : "people"} · ` +
    `${result.image.width}x${result.image.height}`;
}

function hover(panel, event) {
  panel.body.querySelectorAll("tr.hover").forEach((row) => row.classList.remove("hover"));
  if (!event || panel.drawn.length === 0) {
    panel.tooltip.hidden = true;
    return;
  }
  const rect = panel.canvas.getBoundingClientRect();
  const scale = panel.canvas.width / rect.width;
  const x = (event.clientX - rect.left) * scale;
  const y = (event.clientY - rect.top) * scale;
  const reach = Math.max(2 * panel.radius, 8 * scale);
  let best = null;
  let bestDistance = reach;
  for (const point of panel.drawn) {
    const distance = Math.hypot(point.x - x, point.y - y);
    if (distance <= bestDistance) { best = point; bestDistance = distance; }
  }
  if (!best) {
    panel.tooltip.hidden = true;
    return;
  }
  panel.tooltip.textContent = `${best.name} · ${best.score.toFixed(3)} · person ${best.person + 1}`;
  panel.tooltip.style.left = `${event.clientX - rect.left + 12}px`;
  panel.tooltip.style.top = `${event.clientY - rect.top + 12}px`;
  panel.tooltip.hidden = false;
  panel.body.rows[best.person]?.classList.add("hover");
}

// --- downloads (the documents come from the server's writers) ---------------------------------------------------
function download(document_, fileName) {
  const url = URL.createObjectURL(new Blob([JSON.stringify(document_)], { type: "application/json" }));
  const link = Object.assign(document.createElement("a"), { href: url, download: fileName });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function downloadCoco(panel) {
  const records = state.items.flatMap((item) => panel.results.get(item.index)?.coco || []);
  download(records, `${panel.model}.coco.json`);
}

function downloadOpenPose(panel) {
  const item = state.items[state.current];
  const result = item && panel.results.get(item.index);
  if (result && result.openpose) download(result.openpose, `${item.name.replace(/\.[^.]*$/, "")}_keypoints.json`);
}

// --- start ------------------------------------------------------------------------------------------------------
async function start() {
  document.getElementById("video-frames").textContent = String(VIDEO_FRAMES);
  let listing;
  try {
    const response = await fetch("/v1/models");
    listing = await response.json();
  } catch (error) {
    setStatus(`cannot reach the server (${error.message})`, true);
    return;
  }
  listing.models.forEach((model) => state.models.set(model.name, model));
  const names = [...state.models.keys()];
  state.panels = [makePanel(names[0]), makePanel(names[1] || names[0])];
  const compare = document.getElementById("compare");
  compare.disabled = names.length < 2;
  compare.checked = names.length >= 2;
  const showPanels = () => {
    state.panels[1].root.hidden = !compare.checked;
    document.getElementById("panels").classList.toggle("compare", compare.checked);
    renderParts();
    if (compare.checked) predictAll(state.panels[1], state.generation);
    renderAll();
  };
  compare.addEventListener("change", showPanels);
  showPanels();
  const threshold = document.getElementById("threshold");
  threshold.addEventListener("input", () => {
    state.threshold = Number(threshold.value);
    document.getElementById("threshold-value").textContent = state.threshold.toFixed(2);
    renderAll();
  });
  const input = document.getElementById("files");
  input.addEventListener("change", () => addFiles([...input.files]));
  const drop = document.getElementById("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    addFiles([...event.dataTransfer.files]);
  });
  const boxes = listing.detector ? `person detector ${listing.detector}` : "no detector: one box over each whole image";
  const megabytes = (listing.limits.max_upload_bytes / 2 ** 20).toFixed(0);
  setStatus(`${names.join(", ")} · ${boxes} · uploads up to ${megabytes} MiB`);
}

start();
