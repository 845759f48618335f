/* Queue Worker page: the detail view of one workflow (issue 13).
 *
 * Click a workflow id (in the list or the failures view) to open it: status, times, input,
 * result or error, and its steps from GET /api/workflows/{id}/steps, with how many times each
 * ran (a step re-executed after a crash is marked). Retry and fork-from-a-step act on it.
 * While the workflow runs the view refreshes every 2 s (one request pair, one dialog).
 *
 * Same rules as app.js: data reaches the DOM through textContent and attributes only, never
 * innerHTML; one request at a time. It shares the bearer token app.js keeps in sessionStorage,
 * and exposes window.queueWorkerOps (request, openDetail) for failures.js.
 */
(function () {
  "use strict";

  const TOKEN_KEY = "queue-worker.api-token"; // as app.js
  const REFRESH_MS = 2000;
  const ACTIVE = new Set(["ENQUEUED", "DELAYED", "PENDING"]);
  const RETRYABLE = new Set(["ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"]);

  async function request(method, url, body) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const token = window.sessionStorage.getItem(TOKEN_KEY);
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "same-origin",
      });
    } catch (_) {
      throw new Error("Could not reach the API");
    }
    let data = null;
    try {
      data = await res.json();
    } catch (_) {
      data = null;
    }
    if (!res.ok) {
      const message = data && data.error && data.error.message;
      throw new Error(typeof message === "string" ? message : `HTTP ${res.status}`);
    }
    return data;
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child) node.appendChild(child);
    return node;
  }

  function json(value) {
    return JSON.stringify(value, null, 2);
  }

  function when(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    return Number.isNaN(d.getTime()) ? "—" : d.toLocaleString();
  }

  // ---- The dialog, built once ------------------------------------------------------------------

  const dialog = el("dialog", { id: "detail-dialog", class: "detail-dialog", "aria-labelledby": "detail-title" });
  const title = el("h2", { id: "detail-title", class: "mono" });
  const closeButton = el("button", { type: "button", class: "button small ghost", id: "detail-close", text: "Close" });
  const retryButton = el("button", { type: "button", class: "button small", id: "detail-retry", text: "Retry" });
  const message = el("p", { id: "detail-message", class: "form-error", role: "alert" });
  const facts = el("dl", { id: "detail-facts", class: "detail-facts" });
  const errorBox = el("pre", { id: "detail-error", class: "detail-error" });
  const inputBox = el("pre", { id: "detail-input", class: "detail-json" });
  const resultBox = el("pre", { id: "detail-result", class: "detail-json" });
  const stepsBody = el("tbody", { id: "detail-steps" });
  const stepsNote = el("p", { id: "detail-steps-note", class: "muted" });
  const stepsTable = el(
    "table",
    { class: "workflow-table detail-steps" },
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col", text: "#" }),
        el("th", { scope: "col", text: "Step" }),
        el("th", { scope: "col", text: "Status" }),
        el("th", { scope: "col", text: "Started" }),
        el("th", { scope: "col", text: "Duration" }),
        el("th", { scope: "col", text: "Runs" }),
        el("th", { scope: "col", text: "Output or error" }),
        el("th", { scope: "col" }, el("span", { class: "visually-hidden", text: "Actions" })),
      ),
    ),
    stepsBody,
  );
  message.hidden = true;
  errorBox.hidden = true;
  dialog.append(
    el("div", { class: "detail-head" }, title, el("div", { class: "detail-actions" }, retryButton, closeButton)),
    message,
    facts,
    errorBox,
    el("h3", { text: "Input" }),
    inputBox,
    el("h3", { text: "Result" }),
    resultBox,
    el("h3", { text: "Steps" }),
    stepsNote,
    el("div", { class: "table-wrap" }, stepsTable),
  );
  document.body.appendChild(dialog);

  const view = { id: null, timer: null, busy: false };

  function showMessage(text) {
    message.textContent = text || "";
    message.hidden = !text;
  }

  function renderFacts(wf, steps) {
    const rows = [
      ["Status", wf.workflow_status],
      ["Type", wf.workflow_name],
      ["Queue", wf.queue_name || "—"],
      ["Created", when(wf.created_at)],
      ["Started", when(wf.started_at)],
      ["Finished", when(wf.completed_at)],
      ["Progress", wf.num_steps == null ? "—" : `${wf.steps_completed ?? 0} of ${wf.num_steps}`],
      ["Dispatches", steps ? String(steps.dispatches) : "—"],
      ["Executor", wf.executor_id || "—"],
      ["Version", wf.app_version || "—"],
    ];
    if (wf.forked_from) rows.push(["Forked from", wf.forked_from]);
    facts.replaceChildren(
      ...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v), "data-fact": k })]),
    );
  }

  function renderSteps(wf, steps) {
    const list = steps ? steps.steps : [];
    const lastId = list.length ? list[list.length - 1].function_id : 0;
    stepsBody.replaceChildren(
      ...list.map((s) => {
        const runs = el("td", { text: String(s.attempts) });
        if (s.reexecuted) {
          runs.textContent = `${s.attempts}+`;
          runs.title = "Re-executed: the workflow's previous run stopped before this step finished";
          runs.className = "reexecuted";
        }
        const shown = s.error != null ? s.error : json(s.output);
        const fork = el("button", {
          type: "button",
          class: "button small",
          "data-fork-step": String(s.function_id),
          text: "Fork here",
          title: `Start a new workflow that replays steps before ${s.function_id} and runs the rest`,
        });
        fork.disabled = ACTIVE.has(wf.workflow_status);
        const tr = el(
          "tr",
          { "data-function-id": String(s.function_id), "data-status": s.status },
          el("td", { text: String(s.function_id) }),
          el("td", { class: "mono", text: s.name }),
          el("td", {}, el("span", { class: "badge", text: s.status })),
          el("td", { text: when(s.started_at) }),
          el("td", { text: s.duration_ms == null ? "—" : `${s.duration_ms} ms` }),
          runs,
          el("td", { class: "mono step-output", text: shown.length > 200 ? `${shown.slice(0, 200)}…` : shown }),
          el("td", {}, fork),
        );
        return tr;
      }),
    );
    stepsNote.textContent = list.length
      ? `Only finished steps are recorded. Forking after the last one (#${lastId + 1}) re-runs what came after it.`
      : "No step has finished yet.";
  }

  async function refresh() {
    if (!view.id || view.busy) return;
    view.busy = true;
    const id = view.id;
    try {
      const path = `/api/workflows/${encodeURIComponent(id)}`;
      const [wf, steps] = await Promise.all([request("GET", path), request("GET", `${path}/steps`)]);
      if (view.id !== id) return;
      title.textContent = id;
      dialog.dataset.status = wf.workflow_status;
      renderFacts(wf, steps);
      errorBox.textContent = wf.error || "";
      errorBox.hidden = !wf.error;
      inputBox.textContent = json(wf.input);
      resultBox.textContent = wf.result == null ? "—" : json(wf.result);
      renderSteps(wf, steps);
      retryButton.hidden = !RETRYABLE.has(wf.workflow_status);
      clearTimeout(view.timer);
      if (ACTIVE.has(wf.workflow_status)) view.timer = setTimeout(refresh, REFRESH_MS);
    } catch (err) {
      showMessage(err.message);
    } finally {
      view.busy = false;
    }
  }

  function openDetail(id) {
    view.id = id;
    showMessage("");
    title.textContent = id;
    facts.replaceChildren();
    stepsBody.replaceChildren();
    if (!dialog.open) dialog.showModal();
    refresh();
  }

  function closeDetail() {
    view.id = null;
    clearTimeout(view.timer);
    if (dialog.open) dialog.close();
  }

  closeButton.addEventListener("click", closeDetail);
  dialog.addEventListener("close", () => {
    view.id = null;
    clearTimeout(view.timer);
  });

  retryButton.addEventListener("click", async () => {
    const id = view.id;
    retryButton.disabled = true;
    try {
      const out = await request("POST", `/api/workflows/${encodeURIComponent(id)}/retry`);
      showMessage("");
      openDetail(out.workflow_id); // the run that retries it (itself, when resumed)
    } catch (err) {
      showMessage(`Could not retry: ${err.message}`);
    } finally {
      retryButton.disabled = false;
    }
  });

  stepsBody.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-fork-step]");
    if (!button || button.disabled) return;
    const id = view.id;
    button.disabled = true;
    try {
      const step = Number(button.dataset.forkStep);
      const out = await request("POST", `/api/workflows/${encodeURIComponent(id)}/fork`, {
        start_step: step,
      });
      openDetail(out.workflow_id);
    } catch (err) {
      showMessage(`Could not fork: ${err.message}`);
      button.disabled = false;
    }
  });

  // The list's workflow ids open the detail (the rows are app.js's; one delegated listener).
  const rows = document.getElementById("workflow-rows");
  if (rows) {
    rows.addEventListener("click", (event) => {
      const idCell = event.target.closest(".wf-id");
      const row = idCell && idCell.closest("tr[data-workflow-id]");
      if (row) openDetail(row.dataset.workflowId);
    });
  }

  window.queueWorkerOps = { request, openDetail, el, when };
})();
