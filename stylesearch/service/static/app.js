// stylesearch web page: plain JS against the /v1 API, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
let lastQuery = null; // {kind: "file", file} | {kind: "item", id} | {kind: "board"}
let cardFields = []; // attributes a card shows (the server's STYLESEARCH_CARD_FIELDS; else two short ones)
const board = new Map(); // item id -> {item, weight}: pinned (1) or pushed away (-0.5)

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

function arrangement() {
  // group_by / diversity for every search (the API's fields of the same names)
  const out = {};
  if ($("group-by").value) out.group_by = $("group-by").value;
  const diversity = parseFloat($("diversity").value);
  if (diversity > 0) out.diversity = diversity;
  if ($("collapse").checked) out.collapse = true;
  return out;
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
  node.querySelector(".attrs").textContent = shownAttributes(item).map(([a, b]) => `${a}: ${b}`).join(" · ");
  const attrs = Object.entries(item.attributes || {}).map(([a, b]) => `${a}: ${b}`).join(", ");
  node.title = attrs ? `${item.id} — ${attrs}` : item.id;
  node.dataset.id = item.id;
  img.addEventListener("click", () => similarTo(item.id));
  node.querySelector(".more").addEventListener("click", () => similarTo(item.id));
  node.querySelector(".pin").addEventListener("click", () => toBoard(item, 1));
  node.querySelector(".push").addEventListener("click", () => toBoard(item, -0.5));
  node.querySelector(".why").addEventListener("click", () => explain(item));
  if (item.group != null) node.dataset.group = item.group;
  return node;
}

function shownAttributes(item) {
  // the card's attributes: the grouping key first, then the configured fields, else two short ones
  const attrs = item.attributes || {};
  const grouped = $("group-by").value;
  const keys = cardFields.length ? cardFields : Object.keys(attrs).filter((key) => String(attrs[key]).length <= 24);
  const ordered = [grouped, ...keys.filter((key) => key !== grouped)].filter((key) => key && key in attrs);
  return ordered.slice(0, Math.max(2, cardFields.length)).map((key) => [key, attrs[key]]);
}

function clearResults(title, status, isError = false) {
  // what a failed or cleared search leaves: no stale grid under an old title
  $("ooc-banner").hidden = true;
  $("results-title").textContent = title;
  $("results").replaceChildren();
  setStatus(status, isError);
}

function showResults(title, results, outOfCatalog = false) {
  $("ooc-banner").hidden = !outOfCatalog;
  $("results-title").textContent = title;
  const shown = results.filter((item) => item.score == null || item.score > 0);
  const hidden = results.length - shown.length;
  const nodes = [];
  let group = null;
  for (const item of shown) {
    if (item.group != null && item.group !== group) {
      group = item.group;
      const header = document.createElement("h3");
      header.className = "group-header";
      header.textContent = `${$("group-by").value}: ${group}`;
      nodes.push(header);
    }
    nodes.push(card(item));
  }
  $("results").replaceChildren(...nodes);
  const notes = [];
  if (parseFloat($("diversity").value) > 0) notes.push("ordered for variety, not strictly by score");
  if (hidden) notes.push(`${hidden} more with no similarity (score ≤ 0) not shown`);
  const count = shown.length ? `${shown.length} items` : "No items match this filter.";
  setStatus([count, ...notes].join(" · "));
}

function showVerdict(c) {
  $("verdict").hidden = false;
  const why = { out_of_catalog: "looks like nothing in this catalog", low_confidence: "no style is clear enough", no_labelled_items: "no labelled item may vote" };
  $("style-label").textContent = c.label || `unknown (${why[c.reason] || "no answer"})`;
  $("style-confidence").textContent = `(${(100 * c.confidence).toFixed(0)}%)`;
  $("style-evidence").textContent = c.support == null || c.answer == null ? "" :
    `${c.support} of the ${c.neighbors.length} nearest labelled items are ${c.answer}` +
    (c.label == null ? ` (best guess ${c.answer}, not answered)` : "");
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
  for (const [key, value] of Object.entries(arrangement())) searchForm.append(key, String(value));
  const classifyForm = new FormData();
  classifyForm.append("file", file);
  if (filter) classifyForm.append("where", JSON.stringify(filter)); // the verdict obeys the filter the results obey
  try {
    const [search, verdict] = await Promise.all([
      api("/v1/search", { method: "POST", body: searchForm }),
      api("/v1/classify", { method: "POST", body: classifyForm }),
    ]);
    showVerdict(verdict.results[0]);
    showResults(`Same style as ${file.name}`, search.results, search.out_of_catalog === true);
  } catch (err) {
    $("verdict").hidden = true;
    clearResults(`No results for ${file.name}`, `Could not search: ${err.message}`, true);
  }
}

async function similarTo(id) {
  lastQuery = { kind: "item", id };
  setStatus("Searching…");
  const params = new URLSearchParams({ k: String(k()), ...arrangement() });
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
    clearResults(`No results for ${id}`, `Could not search: ${err.message}`, true);
  }
}

function toBoard(item, weight) {
  board.set(item.id, { item, weight });
  showBoard();
  searchBoard();
}

function showBoard() {
  $("board").hidden = board.size === 0;
  $("board-items").replaceChildren(...[...board.values()].map(({ item, weight }) => {
    const node = card(item, { score: false });
    node.classList.toggle("negative", weight < 0);
    node.querySelector(".score").textContent = weight < 0 ? "pushed away" : "pinned";
    node.querySelector(".score").classList.add("weight");
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "unpin";
    remove.textContent = "Remove";
    remove.addEventListener("click", () => {
      board.delete(item.id);
      showBoard();
      searchBoard();
    });
    node.querySelector("figcaption").append(remove);
    return node;
  }));
}

async function searchBoard() {
  if (![...board.values()].some(({ weight }) => weight > 0)) {
    // nothing pinned: the board's old results no longer answer anything
    lastQuery = null;
    $("verdict").hidden = true;
    clearResults("Mood board", board.size ? "Pin at least one item: pushed-away items only say what to avoid."
      : "Mood board cleared. Pick or drop a photo, or click any item to see items in its style.");
    return;
  }
  lastQuery = { kind: "board" };
  setStatus("Searching…");
  const examples = [...board.values()].map(({ item, weight }) => ({ item: item.id, weight }));
  const body = { examples, k: k(), ...arrangement() };
  const filter = where();
  if (filter) body.where = filter;
  try {
    const result = await api("/v1/board", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const pinned = examples.filter((e) => e.weight > 0).length;
    $("verdict").hidden = true;
    showResults(`Mood board: ${pinned} pinned, ${examples.length - pinned} pushed away`, result.results);
  } catch (err) {
    clearResults("Mood board", `Could not search: ${err.message}`, true);
  }
}

function drawHeat(canvas, grid) {
  // a 0-1 grid drawn from transparent (0) through yellow to red (1), stretched over the photo
  // as the model squeezed the photo into its square input
  const n = grid.length;
  canvas.width = n;
  canvas.height = n;
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, n, n);
  grid.forEach((row, y) => row.forEach((value, x) => {
    const v = Math.max(0, Math.min(1, value));
    if (v < 0.05) return;
    ctx.fillStyle = `rgba(${Math.round(255 - 35 * v)}, ${Math.round(220 - 200 * v)}, 20, ${(0.3 + 0.6 * v).toFixed(3)})`;
    ctx.fillRect(x, y, 1, 1);
  }));
  canvas.dataset.cells = String(grid.flat().filter((v) => v > 0.05).length);
}

function fitFrame(img) {
  // the frame takes the photo's own aspect ratio (portrait photos stay portrait)
  const frame = img.closest(".heat-frame");
  const apply = () => { if (img.naturalWidth) frame.style.aspectRatio = `${img.naturalWidth} / ${img.naturalHeight}`; };
  if (img.complete) apply();
  img.onload = apply;
}

async function explain(item) {
  // why this result matches what was searched: the photo, or the item searched from
  let query = null;
  try {
    let why;
    if (lastQuery?.kind === "file") {
      const form = new FormData();
      form.append("file", lastQuery.file);
      form.append("item", item.id);
      why = await api("/v1/explain", { method: "POST", body: form });
      query = URL.createObjectURL(lastQuery.file);
    } else {
      const from = lastQuery?.kind === "item" ? lastQuery.id : [...board.values()].find(({ weight }) => weight > 0)?.item.id;
      if (!from) throw new Error("search first: the explanation compares a result with what was searched");
      why = await api(`/v1/explain?${new URLSearchParams({ query: from, item: item.id })}`);
      query = `/v1/items/${encodeURIComponent(from)}/image`;
    }
    $("explain-query").src = query;
    $("explain-item").src = item.image_url;
    fitFrame($("explain-query"));
    fitFrame($("explain-item"));
    $("explain-item-caption").textContent = `${item.id} (${item.label || "unlabelled"})`;
    drawHeat($("explain-query-heat"), why.heat.query);
    drawHeat($("explain-item-heat"), why.heat.item);
    $("explain-score").textContent = `Similarity ${why.score.toFixed(3)}. Per backbone block, how much more alike ` +
      "these two are than a typical pair of this catalog:";
    $("explain-blocks").replaceChildren(...why.blocks.map((b) => {
      const row = document.createElement("div");
      row.className = "bar";
      row.innerHTML = `<span class="bar-label"></span><span class="bar-track"><span class="bar-fill"></span></span><span class="bar-value"></span>`;
      row.querySelector(".bar-label").textContent = `${b.block} · ${b.kind}`;
      row.querySelector(".bar-fill").style.width = `${Math.max(0, Math.round(100 * b.share))}%`;
      const lift = b.lift === null || b.lift === undefined ? "" : ` · ${b.lift >= 0 ? "+" : ""}${b.lift.toFixed(1)} sd`;
      row.querySelector(".bar-value").textContent = `${(100 * b.share).toFixed(0)}%${lift}`;
      if (b.percentile !== null && b.percentile !== undefined) {
        row.title = `cosine ${b.cosine.toFixed(3)}; typical pair ${b.catalog_mean.toFixed(3)}; ` +
          `more alike than ${(100 * b.percentile).toFixed(0)}% of catalog pairs`;
      }
      return row;
    }));
    $("explain").hidden = false;
  } catch (err) {
    setStatus(`Could not explain: ${err.message}`, true);
  }
}

function rerun() {
  if (lastQuery?.kind === "file") searchFile(lastQuery.file);
  else if (lastQuery?.kind === "item") similarTo(lastQuery.id);
  else if (lastQuery?.kind === "board") searchBoard();
}

async function loadFilters() {
  const [info, values] = await Promise.all([api("/v1/index"), api("/v1/attributes?limit=200")]);
  $("index-summary").textContent = `${info.items} items · ${Object.keys(info.labels).length} styles · ` +
    `${info.head ? "linear head + kNN" : "kNN"} · ${info.search_backend}`;
  const keys = ["label", ...Object.keys(values)];
  const labelValues = info.labels;
  cardFields = info.card_fields || [];
  for (const key of keys) {
    $("filter-key").append(new Option(key, key));
    $("group-by").append(new Option(key, key));
  }
  $("group-by").addEventListener("change", rerun);
  $("diversity").addEventListener("change", rerun);
  $("collapse").addEventListener("change", rerun);
  $("explain-close").addEventListener("click", () => { $("explain").hidden = true; });
  $("board-clear").addEventListener("click", () => {
    board.clear();
    showBoard();
    if (lastQuery === null || lastQuery.kind === "board") searchBoard(); // resets the board's results and title
  });
  const variety = () => { $("diversity-value").textContent = Number($("diversity").value).toFixed(1); };
  $("diversity").addEventListener("input", variety);
  variety();
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
    event.target.value = ""; // picking the same file again is a new search
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
