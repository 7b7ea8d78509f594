// The semsearch page: search as you type, open a hit in its context, keyboard throughout.
// Everything shown is set as text (never as HTML), so a document cannot inject markup.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const box = $("q"), results = $("results"), message = $("message"), main = document.querySelector("main");
  const fields = ["mode", "path", "ext", "after", "before"].map($);
  const state = { hits: [], chosen: -1, serial: 0, timer: 0, editor: "file://{path}", roots: [], opened: null, opening: 0 };
  const DELAY = 180;
  // What an empty box says: what to type, not a blank page.
  const EMPTY = "Ask in plain words, for example \u201chow do I rotate the API keys\u201d: results come as you type.";

  function token() { return sessionStorage.getItem("semsearch-token") || ""; }

  async function api(path) {
    const headers = { "Accept": "application/json" };
    if (token()) headers["Authorization"] = "Bearer " + token();
    const response = await fetch(path, { headers });
    const body = await response.json().catch(() => ({ error: { message: response.statusText } }));
    if (response.status === 401) { $("token").hidden = false; $("token-input").focus(); }
    if (!response.ok) throw new Error((body.error && body.error.message) || response.statusText);
    return body;
  }

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function shown(path) {
    // A path under an indexed folder is shown from inside it (the folder's own name kept).
    for (const root of state.roots) {
      const parent = root.replace(/\/[^/]*\/?$/, "/");
      if (path.startsWith(root + "/") && parent.length > 1) return path.slice(parent.length);
    }
    return path;
  }

  function where(hit) {
    const parts = [];
    if (hit.page) parts.push("page " + hit.page);
    else parts.push(hit.start_line === hit.end_line ? "line " + hit.start_line : "lines " + hit.start_line + "–" + hit.end_line);
    if (hit.section) parts.push(hit.section);
    return parts.join(" · ");
  }

  // The snippet with the query's words marked: highlights are offsets into the hit's text.
  function snippet(hit) {
    const node = el("p", "snippet");
    const text = hit.snippet || hit.text.slice(0, 300);
    const at = hit.text.indexOf(text);
    let position = 0;
    const marks = (hit.highlights || [])
      .filter(([start, end]) => at >= 0 && start >= at && end <= at + text.length)
      .map(([start, end]) => [start - at, end - at]);
    for (const [start, end] of marks) {
      if (start < position) continue;
      node.append(text.slice(position, start), el("mark", "", text.slice(start, end)));
      position = end;
    }
    node.append(text.slice(position));
    return node;
  }

  function render(hits) {
    results.replaceChildren();
    hits.forEach((hit, number) => {
      const item = el("li");
      item.id = "hit-" + number;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", "false");
      item.dataset.chunk = hit.chunk_id;
      item.append(el("span", "score", hit.score.toFixed(3)), el("div", "file", shown(hit.path)), el("div", "where", where(hit)), snippet(hit));
      item.addEventListener("click", () => { choose(number); open(number); });
      results.append(item);
    });
    state.hits = hits;
    state.chosen = -1;
    if (hits.length) choose(0);
  }

  function choose(number) {
    if (!state.hits.length) return;
    number = Math.max(0, Math.min(number, state.hits.length - 1));
    results.querySelectorAll("li").forEach((item, i) => item.setAttribute("aria-selected", String(i === number)));
    state.chosen = number;
    const item = $("hit-" + number);
    box.setAttribute("aria-activedescendant", item.id);
    item.scrollIntoView({ block: "nearest" });
  }

  function query() {
    const params = new URLSearchParams();
    params.set("q", box.value);
    const [mode, path, ext, after, before] = fields.map((field) => field.value.trim());
    params.set("mode", mode);
    for (const glob of path.split(",").map((s) => s.trim()).filter(Boolean)) params.append("path", glob);
    if (ext) params.set("ext", ext);
    if (after) params.set("after", after);
    if (before) params.set("before", before);
    return params;
  }

  async function search() {
    const serial = ++state.serial;
    if (!box.value.trim()) { render([]); message.textContent = EMPTY; return; }
    message.textContent = "Searching…";
    try {
      const started = performance.now();
      const found = await api("/api/search?" + query());
      if (serial !== state.serial) return; // a later keystroke's answer wins
      render(found.results);
      const took = Math.round(performance.now() - started);
      const said = found.results.length
        ? found.results.length + (found.results.length === 1 ? " passage" : " passages") + " in " + took + " ms."
        : "Nothing found.";
      message.textContent = [said, ...found.notes].join(" ");
    } catch (error) {
      if (serial === state.serial) { render([]); message.textContent = error.message; }
    }
  }

  function later() { clearTimeout(state.timer); state.timer = setTimeout(search, DELAY); }

  function editorLink(path, line) {
    return state.editor.replaceAll("{path}", encodeURI(path)).replaceAll("{line}", String(line));
  }

  async function open(number) {
    const hit = state.hits[number];
    if (!hit) return;
    const serial = ++state.opening;
    try {
      const found = await api("/api/passage/" + hit.chunk_id + "?context=6");
      if (serial !== state.opening) return; // closed, or another hit opened, meanwhile
      $("passage-title").textContent = shown(found.path);
      $("passage-where").textContent = where(found);
      $("passage-notes").textContent = found.notes.join(" ");
      const link = $("passage-open");
      link.href = editorLink(found.path, found.start_line);
      const lines = $("passage-lines");
      lines.replaceChildren();
      for (const line of found.lines) {
        const row = el("span", line.hit ? "line hit" : "line");
        row.append(el("span", "number", String(line.number)), line.text || " ");
        lines.append(row);
      }
      $("passage").hidden = false;
      main.classList.add("with-passage");
      state.opened = number;
      const first = lines.querySelector(".hit");
      if (first) first.scrollIntoView({ block: "center" });
    } catch (error) {
      message.textContent = error.message;
    }
  }

  function close() {
    state.opening++;
    $("passage").hidden = true;
    main.classList.remove("with-passage");
    state.opened = null;
    box.focus();
  }

  async function status() {
    try {
      const info = await api("/api/status");
      state.editor = info.server.editor_url;
      state.roots = info.roots;
      const list = $("status");
      list.replaceChildren();
      const rows = [
        ["Model", info.model], ["Documents", info.documents.toLocaleString()], ["Chunks", info.chunks.toLocaleString()],
        ["Folders", info.roots.join(", ") || "none"], ["Last indexed", info.last_indexed || "never"],
      ];
      // Chunks written before their vectors: found by keywords until indexing embeds them.
      if (info.waiting_chunks) rows.splice(3, 0, ["Waiting for vectors", info.waiting_chunks.toLocaleString() + " chunks"]);
      for (const [name, value] of rows) list.append(el("dt", "", name), el("dd", "", value));
    } catch (error) {
      $("status").replaceChildren(el("dd", "", error.message));
    }
  }

  box.addEventListener("input", later);
  fields.forEach((field) => field.addEventListener(field.tagName === "SELECT" ? "change" : "input", later));
  $("search").addEventListener("submit", (event) => event.preventDefault());
  $("passage-close").addEventListener("click", close);
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("semsearch-token", $("token-input").value);
    $("token").hidden = true;
    status();
    search();
    box.focus();
  });

  document.addEventListener("keydown", (event) => {
    const typing = (event.target instanceof HTMLInputElement && event.target !== box) || event.target instanceof HTMLSelectElement;
    if (event.key === "Escape") {
      event.preventDefault();
      if (!$("passage").hidden) close();
      else if (box.value) { box.value = ""; search(); box.focus(); }
    } else if (event.key === "ArrowDown" && !typing && state.hits.length) {
      event.preventDefault();
      choose(state.chosen + 1);
    } else if (event.key === "ArrowUp" && !typing && state.hits.length) {
      event.preventDefault();
      choose(state.chosen - 1);
    } else if (event.key === "Enter" && !typing && event.target.tagName !== "BUTTON" && event.target.tagName !== "A") {
      event.preventDefault();
      if (state.chosen >= 0) open(state.chosen);
      else { clearTimeout(state.timer); search(); }
    } else if (event.key === "/" && document.activeElement !== box && !typing) {
      event.preventDefault();
      box.focus();
    }
  });

  status();
})();
