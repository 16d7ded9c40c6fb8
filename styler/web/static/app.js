// styler serve: the page's only script (no framework, no build step, nothing from a CDN).
// State: one photo (a File or a sample's Blob), one selected style; every change re-stylizes, the newest wins.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { photo: null, photoName: "photo", model: null, style: null, models: [], samples: [],
  controller: null, resultUrl: null, beforeUrl: null };

function setMessage(id, text) { $(id).textContent = text || ""; }

async function errorText(response) {
  try { const body = await response.json(); return body.error || response.statusText; }
  catch (e) { return `${response.status} ${response.statusText}`; }
}

const ROMAN = /^(i|ii|iii|iv|v|vi|vii|viii|ix|x)$/i;
function prettyStyle(name) {
  return name.split("_").map((w) => ROMAN.test(w) ? w.toUpperCase() : w.charAt(0).toUpperCase() + w.slice(1)).join(" ");
}

// --- tabs ---------------------------------------------------------------------------------------------------------
function showView(view) {
  for (const tab of document.querySelectorAll(".tabs button")) {
    const on = tab.dataset.view === view;
    tab.setAttribute("aria-selected", String(on));
    $(`view-${tab.dataset.view}`).hidden = !on;
  }
}

// --- health, models, samples --------------------------------------------------------------------------------------
async function loadHealth() {
  const pill = $("health");
  try {
    const response = await fetch("/api/health");
    const body = await response.json();
    pill.textContent = `ready · v${body.version}`;
    pill.className = "pill ok";
  } catch (e) { pill.textContent = "server unreachable"; pill.className = "pill bad"; }
}

function galleryItems(models) {
  const items = [];
  for (const m of models) {
    const styles = m.styles || [null];
    for (const style of styles) {
      const label = style ? prettyStyle(style) : prettyStyle(m.style);
      items.push({ model: m.name, style, label, norm: m.norm_short, isDefault: m.default,
        thumb: m.thumbnail + (style ? `?style=${encodeURIComponent(style)}` : "") });
    }
  }
  return items;
}

function loadThumbnail(img, url, attempt = 0) {
  img.onerror = () => { if (attempt < 8) setTimeout(() => loadThumbnail(img, url, attempt + 1), 1500 * (attempt + 1)); };
  img.src = attempt ? `${url}${url.includes("?") ? "&" : "?"}retry=${attempt}` : url;
}

async function loadModels() {
  const response = await fetch("/api/models");
  if (!response.ok) { setMessage("message", await errorText(response)); return; }
  state.models = await response.json();
  const gallery = $("gallery");
  gallery.textContent = "";
  const items = galleryItems(state.models);
  const chosen = items.find((i) => i.isDefault) || items[0];
  for (const item of items) {
    const button = document.createElement("button");
    button.className = "style";
    button.type = "button";
    button.setAttribute("role", "option");
    button.dataset.model = item.model;
    button.title = `${item.model}${item.style ? " · " + item.style : ""}`;
    const img = document.createElement("img");
    img.alt = item.label;
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = item.label;
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = item.norm;
    name.appendChild(badge);
    button.append(img, name);
    button.addEventListener("click", () => selectStyle(item, button));
    gallery.appendChild(button);
    loadThumbnail(img, item.thumb);
    if (item === chosen) selectStyle(item, button, false);
  }
}

function selectStyle(item, button, run = true) {
  for (const b of document.querySelectorAll(".style")) b.classList.toggle("selected", b === button);
  state.model = item.model;
  state.style = item.style;
  if (run) stylize();
}

async function loadSamples() {
  const response = await fetch("/api/samples");
  if (!response.ok) return;
  state.samples = await response.json();
  const box = $("samples");
  const mateSelect = $("mate-sample");
  for (const sample of state.samples) {
    const button = document.createElement("button");
    button.type = "button";
    button.title = sample.name;
    const img = document.createElement("img");
    img.src = sample.url;
    img.alt = sample.name;
    button.appendChild(img);
    button.addEventListener("click", () => useSample(sample, button));
    box.appendChild(button);
    const option = document.createElement("option");
    option.value = sample.name;
    option.textContent = sample.name.replace(/_/g, " ");
    mateSelect.appendChild(option);
  }
  // The batch-mate defaults to the last sample (the synthetic landscape), never the photo being measured.
  if (mateSelect.options.length) mateSelect.selectedIndex = mateSelect.options.length - 1;
}

async function useSample(sample, button) {
  const response = await fetch(sample.url);
  if (!response.ok) { setMessage("message", await errorText(response)); return; }
  for (const b of document.querySelectorAll(".samples button")) b.classList.toggle("selected", b === button);
  setPhoto(await response.blob(), sample.name);
}

// --- the photo ----------------------------------------------------------------------------------------------------
function setPhoto(blob, name) {
  state.photo = blob;
  state.photoName = (name || "photo").replace(/\.[^.]*$/, "").replace(/[^\w.-]+/g, "_") || "photo";
  if (state.beforeUrl) URL.revokeObjectURL(state.beforeUrl);
  state.beforeUrl = URL.createObjectURL(blob);
  $("before").src = state.beforeUrl;
  $("compare").classList.remove("empty");
  stylize();
}

function wireDrop() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) {
      for (const b of document.querySelectorAll(".samples button")) b.classList.remove("selected");
      setPhoto(file, file.name);
    }
  });
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) setPhoto(file, file.name);
  });
}

// --- stylizing ----------------------------------------------------------------------------------------------------
async function stylize() {
  if (!state.photo || !state.model) return;
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  state.controller = controller;
  const form = new FormData();
  form.append("image", state.photo, state.photoName);
  form.append("model", state.model);
  if (state.style) form.append("style", state.style);
  form.append("strength", String(Number($("strength").value) / 100));
  form.append("preserve_color", $("preserve").checked ? "true" : "false");
  if ($("max-size").value) form.append("max_size", $("max-size").value);
  document.body.dataset.state = "working";
  $("compare").classList.add("waiting");
  setMessage("message", "");
  try {
    const response = await fetch("/api/stylize", { method: "POST", body: form, signal: controller.signal });
    if (!response.ok) throw new Error(await errorText(response));
    const blob = await response.blob();
    if (state.resultUrl) URL.revokeObjectURL(state.resultUrl);
    state.resultUrl = URL.createObjectURL(blob);
    const after = $("after");
    await new Promise((resolve, reject) => { after.onload = resolve; after.onerror = reject; after.src = state.resultUrl; });
    const h = response.headers;
    $("timing").textContent = `${Number(h.get("X-Styler-Seconds")).toFixed(2)} s · ${h.get("X-Styler-Backend")} · ` +
      `${decodeURIComponent(h.get("X-Styler-Model") || "")} · ${(h.get("X-Styler-Size") || "").replace("x", "×")}`;
    const link = $("download");
    link.href = state.resultUrl;
    link.download = `${state.photoName}_${state.model}.png`;
    link.classList.remove("disabled");
    document.body.dataset.state = "done";
  } catch (error) {
    if (error.name === "AbortError") return;
    setMessage("message", error.message);
    document.body.dataset.state = "error";
  } finally {
    if (state.controller === controller) { state.controller = null; $("compare").classList.remove("waiting"); }
  }
}

function wireControls() {
  const strength = $("strength");
  strength.addEventListener("input", () => { $("strength-out").textContent = `${strength.value} %`; });
  strength.addEventListener("change", stylize);
  $("preserve").addEventListener("change", stylize);
  $("max-size").addEventListener("change", stylize);
  const split = $("split");
  const place = () => {
    $("after").style.clipPath = `inset(0 0 0 ${split.value}%)`;
    $("handle").style.left = `${split.value}%`;
  };
  split.addEventListener("input", place);
  place();
}

// --- the Norms view -----------------------------------------------------------------------------------------------
async function photoForNorms() {
  if (state.photo) return { blob: state.photo, name: state.photoName };
  if (!state.samples.length) throw new Error("choose a photo first (Stylize tab)");
  const response = await fetch(state.samples[0].url);
  return { blob: await response.blob(), name: state.samples[0].name };
}

async function postNorms(path, fill) {
  const photo = await photoForNorms();
  const form = new FormData();
  form.append("image", photo.blob, photo.name);
  fill(form);
  const response = await fetch(path, { method: "POST", body: form });
  if (!response.ok) throw new Error(await errorText(response));
  return response.json();
}

function figure(src, caption, className) {
  const fig = document.createElement("figure");
  if (className) fig.className = className;
  const img = document.createElement("img");
  img.src = src;
  img.alt = caption;
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(img, cap);
  return fig;
}

async function runSideBySide() {
  const button = $("run-side");
  button.disabled = true;
  setMessage("norms-message", "");
  try {
    const body = await postNorms("/api/norms/side-by-side", () => {});
    const grid = $("side-grid");
    grid.textContent = "";
    grid.appendChild(figure(body.photo, "your photo", "norm-card"));
    for (const m of body.models) {
      grid.appendChild(figure(m.image, `${m.norm_short} · ${m.norm} norm · ${m.seconds.toFixed(2)} s`, "norm-card"));
    }
  } catch (error) { setMessage("norms-message", error.message); }
  finally { button.disabled = false; }
}

function formatDelta(value) {
  if (value === 0) return "0";
  return value < 1e-3 ? value.toExponential(1) : value.toFixed(3);
}

function cell(row, content) {
  const td = document.createElement("td");
  if (typeof content === "string") td.textContent = content; else td.appendChild(content);
  row.appendChild(td);
  return td;
}

function image(src, alt) { const img = document.createElement("img"); img.src = src; img.alt = alt; return img; }

async function runIndependence() {
  const button = $("run-indep");
  button.disabled = true;
  setMessage("norms-message", "");
  const companion = document.querySelector("input[name=companion]:checked").value;
  try {
    const body = await postNorms("/api/norms/independence", (form) => {
      form.append("companion", companion);
      if (companion === "photo") form.append("sample", $("mate-sample").value);
    });
    const mates = $("indep-mates");
    mates.textContent = "";
    mates.append(figure(body.photo, "the photo"), figure(body.mate, companion === "dark" ? "its batch-mate: a dark copy" : "its batch-mate"));
    const tbody = document.querySelector("#indep-table tbody");
    tbody.textContent = "";
    for (const m of body.models) {
      const tr = document.createElement("tr");
      cell(tr, `${m.norm_short} (${m.norm})`);
      cell(tr, image(m.alone, "alone"));
      cell(tr, image(m.in_batch, "in the batch"));
      cell(tr, image(m.difference, "difference"));
      cell(tr, formatDelta(m.max_abs)).className = "num";
      const verdict = cell(tr, m.independent ? "unchanged" : "shifted");
      verdict.className = `verdict ${m.independent ? "same" : "shifted"}`;
      verdict.title = m.mode;
      tbody.appendChild(tr);
    }
    $("indep-table").hidden = false;
  } catch (error) { setMessage("norms-message", error.message); }
  finally { button.disabled = false; }
}

// --- start --------------------------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", () => {
  for (const tab of document.querySelectorAll(".tabs button")) tab.addEventListener("click", () => showView(tab.dataset.view));
  wireDrop();
  wireControls();
  $("run-side").addEventListener("click", runSideBySide);
  $("run-indep").addEventListener("click", runIndependence);
  loadHealth();
  loadSamples();
  loadModels().catch((error) => setMessage("message", error.message));
});
