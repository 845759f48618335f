/* Queue Worker page: the failures (dead-letter) view and bulk actions (issue 13).
 *
 * Lists GET /api/dead-letter (ERROR and MAX_RECOVERY_ATTEMPTS_EXCEEDED, newest first, 50 a page)
 * with filters on type, queue, error text and creation time. Rows can be selected; a bulk retry
 * or cancel first asks the API for a dry run and shows how many workflows it would act on, and
 * only a second click ("Confirm") acts. "All matching" sends the filter instead of ids: the API
 * acts on at most 1,000 a call and says when more match.
 *
 * Loaded after detail.js, whose window.queueWorkerOps it uses (request, openDetail). The view
 * refreshes only on demand (Search, or after an action), so it costs nothing while idle.
 */
(function () {
  "use strict";

  const ops = window.queueWorkerOps;
  if (!ops) return;
  const { request, openDetail, el, when } = ops;

  const field = (label, input) =>
    el("label", { class: "field" }, el("span", { class: "field-label", text: label }), input);
  const nameInput = el("input", { id: "dl-name", type: "text", placeholder: "any", spellcheck: "false" });
  const queueInput = el("input", { id: "dl-queue", type: "text", placeholder: "any", spellcheck: "false" });
  const errorInput = el("input", { id: "dl-error", type: "text", placeholder: "text in the error" });
  const afterInput = el("input", { id: "dl-after", type: "datetime-local" });
  const beforeInput = el("input", { id: "dl-before", type: "datetime-local" });
  const retriedInput = el("input", { id: "dl-retried", type: "checkbox" });
  const searchButton = el("button", { id: "dl-search", type: "submit", class: "button primary", text: "Search" });
  const form = el(
    "form",
    { id: "dl-form", class: "enqueue-form dl-form", novalidate: "" },
    field("Type", nameInput),
    field("Queue", queueInput),
    field("Error contains", errorInput),
    field("Created after", afterInput),
    field("Created before", beforeInput),
    field("Show retried", retriedInput),
    searchButton,
  );
  const selectAll = el("input", { id: "dl-select-all", type: "checkbox", "aria-label": "Select all on this page" });
  const tbody = el("tbody", { id: "dl-rows" });
  const table = el(
    "table",
    { class: "workflow-table", id: "dl-table" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col" }, selectAll),
        el("th", { scope: "col", text: "Workflow" }),
        el("th", { scope: "col", text: "Status" }),
        el("th", { scope: "col", text: "Error" }),
        el("th", { scope: "col", text: "Created" }),
      ),
    ),
    tbody,
  );
  const retrySelected = el("button", { id: "dl-retry-selected", type: "button", class: "button", text: "Retry selected" });
  const retryAll = el("button", { id: "dl-retry-all", type: "button", class: "button", text: "Retry all matching" });
  const cancelAll = el("button", {
    id: "dl-cancel-active",
    type: "button",
    class: "button",
    text: "Cancel active of this type/queue",
    title: "Cancel the ENQUEUED, DELAYED and PENDING workflows matching Type and Queue",
  });
  const confirmButton = el("button", { id: "dl-confirm", type: "button", class: "button primary", text: "Confirm" });
  const abortButton = el("button", { id: "dl-abort", type: "button", class: "button ghost", text: "Never mind" });
  const status = el("p", { id: "dl-status", class: "muted", role: "status", "aria-live": "polite" });
  const olderButton = el("button", { id: "dl-older", type: "button", class: "button", text: "Older ›" });
  confirmButton.hidden = true;
  abortButton.hidden = true;
  olderButton.hidden = true;

  const section = el(
    "section",
    { id: "failures", class: "card workflows", "aria-labelledby": "failures-heading" },
    el(
      "div",
      { class: "toolbar" },
      el("h2", { id: "failures-heading", text: "Failures" }),
      el("p", { class: "muted", text: "Workflows that ended in ERROR or exceeded their recovery attempts." }),
    ),
    form,
    el("div", { class: "dl-actions" }, retrySelected, retryAll, cancelAll, confirmButton, abortButton),
    status,
    el("div", { class: "table-wrap" }, table),
    olderButton,
  );
  (document.querySelector("main.container") || document.body).appendChild(section);

  const view = { next: null, pending: null };

  function isoOf(input) {
    if (!input.value) return undefined;
    const d = new Date(input.value); // local time, as the user typed it
    return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
  }

  function filter() {
    const f = {};
    if (nameInput.value.trim()) f.name = nameInput.value.trim();
    if (queueInput.value.trim()) f.queue = queueInput.value.trim();
    if (errorInput.value.trim()) f.error = errorInput.value.trim();
    const after = isoOf(afterInput);
    const before = isoOf(beforeInput);
    if (after) f.created_after = after;
    if (before) f.created_before = before;
    return f;
  }

  function say(text) {
    status.textContent = text;
  }

  function renderRows(items, append) {
    const rows = items.map((wf) => {
      const box = el("input", { type: "checkbox", "data-select": wf.workflow_id, "aria-label": `Select ${wf.workflow_id}` });
      const id = el("button", { type: "button", class: "link mono wf-open", "data-open": wf.workflow_id, text: wf.workflow_id });
      return el(
        "tr",
        { "data-workflow-id": wf.workflow_id, "data-status": wf.workflow_status },
        el("td", {}, box),
        el("td", {}, id, el("span", { class: "wf-meta muted", text: ` ${wf.workflow_name}` })),
        el("td", {}, el("span", { class: "badge", text: wf.workflow_status.replace(/_/g, " ") })),
        el("td", { class: "mono step-output", text: wf.error || "—" }),
        el("td", { text: when(wf.created_at) }),
      );
    });
    if (append) tbody.append(...rows);
    else tbody.replaceChildren(...rows);
    selectAll.checked = false;
  }

  async function load(url, append) {
    try {
      const res = await fetch(url, { headers: authHeaders(), cache: "no-store" });
      const body = await res.json();
      if (!res.ok) throw new Error((body && body.error && body.error.message) || `HTTP ${res.status}`);
      renderRows(body, append);
      const link = res.headers.get("Link");
      const match = link && /<([^>]*)>\s*;\s*rel="?next"?/i.exec(link);
      view.next = match && match[1].startsWith("/api/dead-letter") ? match[1] : null;
      olderButton.hidden = !view.next;
      const shown = tbody.children.length;
      say(shown ? `${shown} failed workflow${shown === 1 ? "" : "s"} shown.` : "No failed workflows match.");
    } catch (err) {
      say(`Could not load failures: ${err.message}`);
    }
  }

  function authHeaders() {
    const token = window.sessionStorage.getItem("queue-worker.api-token");
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    return headers;
  }

  function search() {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(filter())) params.set(k, v);
    // Outstanding failures only, unless asked: a retried workflow stays ERROR (its retry is a
    // new workflow), and the bulk retry by filter skips it the same way.
    if (!retriedInput.checked) params.set("forked", "false");
    return load(`/api/dead-letter?${params}`, false);
  }

  function selected() {
    return [...tbody.querySelectorAll("input[data-select]:checked")].map((b) => b.dataset.select);
  }

  function listFilter(f) {
    // The bulk body wants lists for names and queues.
    const out = { ...f };
    if (out.name) out.name = out.name.split(",").map((s) => s.trim()).filter(Boolean);
    if (out.queue) out.queue = out.queue.split(",").map((s) => s.trim()).filter(Boolean);
    return out;
  }

  function describe(action, out, dry) {
    const verb = action === "retry" ? "retried" : "cancelled";
    const more = out.more ? ` (${out.matched} match: repeat to do the rest)` : "";
    const skipped = out.skipped.length ? `, ${out.skipped.length} skipped` : "";
    return dry
      ? `${out.count} workflow${out.count === 1 ? "" : "s"} will be ${verb}${skipped}${more}.`
      : `${out.count} workflow${out.count === 1 ? "" : "s"} ${verb}${skipped}${more}.`;
  }

  async function dryRun(action, body) {
    view.pending = null;
    confirmButton.hidden = abortButton.hidden = true;
    try {
      const out = await request("POST", `/api/workflows/bulk/${action}`, { ...body, dry_run: true });
      say(describe(action, out, true));
      if (out.count > 0) {
        view.pending = { action, body };
        confirmButton.hidden = abortButton.hidden = false;
        confirmButton.focus();
      }
    } catch (err) {
      say(`Could not ${action}: ${err.message}`);
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    search();
  });
  olderButton.addEventListener("click", () => view.next && load(view.next, true));
  selectAll.addEventListener("change", () => {
    for (const box of tbody.querySelectorAll("input[data-select]")) box.checked = selectAll.checked;
  });
  tbody.addEventListener("click", (event) => {
    const open = event.target.closest("[data-open]");
    if (open) openDetail(open.dataset.open);
  });
  retrySelected.addEventListener("click", () => {
    const ids = selected();
    if (!ids.length) return say("Select workflows first.");
    dryRun("retry", { workflow_ids: ids });
  });
  retryAll.addEventListener("click", () => dryRun("retry", { filter: listFilter(filter()) }));
  cancelAll.addEventListener("click", () => {
    const f = listFilter(filter());
    delete f.error; // active workflows have no error yet
    dryRun("cancel", { filter: f });
  });
  abortButton.addEventListener("click", () => {
    view.pending = null;
    confirmButton.hidden = abortButton.hidden = true;
    say("Nothing done.");
  });
  confirmButton.addEventListener("click", async () => {
    const pending = view.pending;
    if (!pending) return;
    view.pending = null;
    confirmButton.hidden = abortButton.hidden = true;
    try {
      const out = await request("POST", `/api/workflows/bulk/${pending.action}`, pending.body);
      await search();
      say(describe(pending.action, out, false));
    } catch (err) {
      say(`Could not ${pending.action}: ${err.message}`);
    }
  });

  // The API may need a token (app.js asks for it): load again once one is given.
  const tokenForm = document.getElementById("token-form");
  if (tokenForm) tokenForm.addEventListener("submit", () => setTimeout(search, 300));

  search();
})();
