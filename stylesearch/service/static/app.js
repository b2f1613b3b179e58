// stylesearch web page: plain JS against the /v1 API, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let lastQuery = null; // {kind: "file", file} | {kind: "item", id}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new Error(body.message || `${response.status} ${response.statusText}`);
  }
  return body;
}

function where() {
  const key = $("filter-key").value;
  const value = $("filter-value").value;
  return key && value ? { [key]: value } : null;
}

function k() {
  const n = parseInt($("k").value, 10);
  return Number.isFinite(n) && n > 0 ? Math.min(n, 100) : 12;
}

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function card(item, { score = true } = {}) {
  const node = $("card").content.firstElementChild.cloneNode(true);
  const img = node.querySelector("img");
  img.src = item.image_url;
  img.alt = `${item.label || "unlabelled"} item ${item.id}`;
  img.loading = "lazy";
  node.querySelector(".label").textContent = item.label || "unlabelled";
  node.querySelector(".score").textContent = score && item.score != null ? item.score.toFixed(3) : "";
  node.querySelector(".id").textContent = item.id;
  const attrs = Object.entries(item.attributes || {}).map(([a, b]) => `${a}: ${b}`).join(", ");
  node.title = attrs ? `${item.id} — ${attrs}` : item.id;
  node.dataset.id = item.id;
  img.addEventListener("click", () => similarTo(item.id));
  node.querySelector(".more").addEventListener("click", () => similarTo(item.id));
  return node;
}

function showResults(title, results) {
  $("results-title").textContent = title;
  const grid = $("results");
  grid.replaceChildren(...results.map((item) => card(item)));
  setStatus(results.length ? `${results.length} items` : "No items match this filter.");
}

function showVerdict(c) {
  $("verdict").hidden = false;
  const why = { out_of_catalog: "looks like nothing in this catalog", low_confidence: "no style is clear enough", no_labelled_items: "no labelled item may vote" };
  $("style-label").textContent = c.label || `unknown (${why[c.reason] || "no answer"})`;
  $("style-confidence").textContent = `(${(100 * c.confidence).toFixed(0)}%)`;
  $("style-familiarity").textContent = c.familiarity == null ? "" :
    c.reason === "out_of_catalog" ? `This photo looks like nothing in this catalog (familiarity ${c.familiarity.toFixed(3)}).` :
    `Looks like this catalog: familiarity ${c.familiarity.toFixed(2)} (0 = unlike any item, 0.5 = a typical item).`;
  const parts = [];
  if (c.knn) parts.push(`kNN: ${c.knn.label} ${(100 * c.knn.confidence).toFixed(0)}%`);
  if (c.linear) parts.push(`linear head: ${c.linear.label} ${(100 * c.linear.confidence).toFixed(0)}%`);
  $("style-method").textContent = `decided by ${c.method}` + (parts.length ? ` — ${parts.join(", ")}` : "");
  const bars = Object.entries(c.scores).slice(0, 6).map(([label, value]) => {
    const row = document.createElement("div");
    row.className = "bar";
    row.innerHTML = `<span class="bar-label"></span><span class="bar-track"><span class="bar-fill"></span></span><span class="bar-value"></span>`;
    row.querySelector(".bar-label").textContent = label;
    row.querySelector(".bar-fill").style.width = `${Math.round(100 * value)}%`;
    row.querySelector(".bar-value").textContent = `${(100 * value).toFixed(0)}%`;
    return row;
  });
  $("style-scores").replaceChildren(...bars);
  $("evidence").replaceChildren(...c.neighbors.map((item) => card(item)));
}

async function searchFile(file) {
  lastQuery = { kind: "file", file };
  $("preview").src = URL.createObjectURL(file);
  $("preview").hidden = false;
  $("drop-text").textContent = file.name;
  setStatus("Searching…");
  const filter = where();
  const searchForm = new FormData();
  searchForm.append("file", file);
  searchForm.append("k", String(k()));
  if (filter) searchForm.append("where", JSON.stringify(filter));
  const classifyForm = new FormData();
  classifyForm.append("file", file);
  try {
    const [search, verdict] = await Promise.all([
      api("/v1/search", { method: "POST", body: searchForm }),
      api("/v1/classify", { method: "POST", body: classifyForm }),
    ]);
    showVerdict(verdict.results[0]);
    showResults(`Same style as ${file.name}`, search.results);
  } catch (err) {
    $("verdict").hidden = true;
    setStatus(`Could not search: ${err.message}`, true);
  }
}

async function similarTo(id) {
  lastQuery = { kind: "item", id };
  setStatus("Searching…");
  const params = new URLSearchParams({ k: String(k()) });
  const filter = where();
  if (filter) params.set("where", JSON.stringify(filter));
  try {
    const [item, result] = await Promise.all([
      api(`/v1/items/${encodeURIComponent(id)}`),
      api(`/v1/items/${encodeURIComponent(id)}/similar?${params}`),
    ]);
    $("preview").src = item.image_url;
    $("preview").hidden = false;
    $("drop-text").textContent = `${item.id} (${item.label || "unlabelled"})`;
    $("verdict").hidden = true;
    showResults(`More like ${item.id}`, result.results);
  } catch (err) {
    setStatus(`Could not search: ${err.message}`, true);
  }
}

function rerun() {
  if (lastQuery?.kind === "file") searchFile(lastQuery.file);
  else if (lastQuery?.kind === "item") similarTo(lastQuery.id);
}

async function loadFilters() {
  const [info, values] = await Promise.all([api("/v1/index"), api("/v1/attributes?limit=200")]);
  $("index-summary").textContent = `${info.items} items · ${Object.keys(info.labels).length} styles · ` +
    `${info.head ? "linear head + kNN" : "kNN"} · ${info.search_backend}`;
  const keys = ["label", ...Object.keys(values)];
  const labelValues = info.labels;
  for (const key of keys) {
    const option = document.createElement("option");
    option.value = key;
    option.textContent = key;
    $("filter-key").append(option);
  }
  $("filter-key").addEventListener("change", () => {
    const key = $("filter-key").value;
    const select = $("filter-value");
    const counts = key === "label" ? labelValues : values[key] || {};
    const options = [new Option("any", "")].concat(
      Object.entries(counts).map(([value, n]) => new Option(`${value} (${n})`, value)));
    select.replaceChildren(...options);
    select.disabled = !key;
    rerun();
  });
  $("filter-value").addEventListener("change", rerun);
}

async function showStart() {
  // Something to click before any upload: a few items of each style.
  const labels = Object.keys((await api("/v1/labels")).labels).slice(0, 8);
  const pages = await Promise.all(labels.map((label) =>
    api(`/v1/items?limit=3&where=${encodeURIComponent(JSON.stringify({ label }))}`)));
  const items = pages.flatMap((page) => page.items);
  $("results-title").textContent = "Some items of each style";
  $("results").replaceChildren(...items.map((item) => card(item, { score: false })));
  setStatus("Pick or drop a photo, or click any item to see items in its style.");
}

function wireUpload() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) searchFile(file);
  });
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files[0];
    if (file) searchFile(file);
  });
  $("k").addEventListener("change", rerun);
}

wireUpload();
loadFilters()
  .then(showStart)
  .catch((err) => setStatus(`The server is not answering: ${err.message}`, true));
