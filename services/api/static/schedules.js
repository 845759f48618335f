/* Queue Worker page: the schedules panel. Lists /api/schedules (refreshed every few seconds while
 * the tab is visible), creates one (a declared type, its input from the same generated fields as
 * forms.js, a cron and a time zone), and pauses, resumes, triggers, backfills and deletes.
 * Data reaches the DOM through textContent and attributes only.
 */
(function () {
  "use strict";

  const REFRESH_MS = 5000;
  const qw = window.queueWorker;
  const $ = (id) => document.getElementById(id);
  const els = {
    panel: $("schedules-panel"),
    form: $("schedule-form"),
    name: $("schedule-name"),
    type: $("schedule-type"),
    inputs: $("schedule-inputs"),
    cron: $("schedule-cron"),
    timezone: $("schedule-timezone"),
    create: $("schedule-create"),
    error: $("schedule-error"),
    rows: $("schedule-rows"),
    empty: $("schedule-empty"),
  };
  let readInput = () => ({});
  let timer = null;

  function el(tag, attrs = {}, text = "") {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  function showError(message) {
    els.error.textContent = message || "";
    els.error.hidden = !message;
  }

  function when(iso) {
    if (!iso) return "—";
    const date = new Date(iso);
    return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  }

  function button(label, action) {
    const b = el("button", { class: "button small", type: "button" }, label);
    b.dataset.action = action;
    return b;
  }

  function backfillForm(name) {
    const form = el("form", { class: "backfill-form", novalidate: "" });
    const start = el("input", { type: "datetime-local", step: "1", "aria-label": "Backfill from" });
    start.dataset.field = "start";
    const end = el("input", { type: "datetime-local", step: "1", "aria-label": "Backfill until" });
    end.dataset.field = "end";
    const go = el("button", { class: "button small primary", type: "submit" }, "Enqueue missed runs");
    form.append(el("span", { class: "field-label" }, "From"), start, el("span", { class: "field-label" }, "until"), end, go);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const body = { start: qw.forms.localToRfc3339(start.value), end: qw.forms.localToRfc3339(end.value) };
      if (!body.start || !body.end) {
        showError("Backfill: give a start and an end time.");
        return;
      }
      const data = await act(name, "backfill", body);
      if (data) {
        showError("");
        form.remove();
        flash(`${name}: ${data.workflow_ids.length} run(s) enqueued`);
      }
    });
    return form;
  }

  function flash(message) {
    els.error.textContent = message;
    els.error.hidden = false;
    els.error.dataset.kind = "info";
  }

  function render(schedules) {
    const seen = new Set();
    for (const s of schedules) {
      seen.add(s.name);
      let tr = Array.from(els.rows.children).find((r) => r.dataset.name === s.name);
      if (!tr) {
        tr = el("tr");
        tr.dataset.name = s.name;
        for (const cls of ["name", "type", "cron", "status", "next", "last", "actions"]) {
          tr.append(el("td", { class: `sched-${cls}` }));
        }
        const actions = tr.querySelector(".sched-actions");
        actions.append(
          button("Pause", "pause"),
          button("Resume", "resume"),
          button("Run now", "trigger"),
          button("Backfill…", "backfill"),
          button("Delete", "delete"),
        );
        els.rows.append(tr);
      }
      tr.dataset.status = s.status;
      tr.querySelector(".sched-name").textContent = s.name;
      tr.querySelector(".sched-type").textContent = `${s.type || "?"} ${s.input ? JSON.stringify(s.input) : ""}`;
      tr.querySelector(".sched-cron").textContent = `${s.cron}${s.timezone ? ` (${s.timezone})` : " (UTC)"}`;
      const badge = tr.querySelector(".sched-status");
      badge.textContent = s.status;
      tr.querySelector(".sched-next").textContent = when(s.next_run_at);
      tr.querySelector(".sched-last").textContent = when(s.last_fired_at);
      tr.querySelector('[data-action="pause"]').hidden = s.status !== "ACTIVE";
      tr.querySelector('[data-action="resume"]').hidden = s.status === "ACTIVE";
    }
    for (const tr of Array.from(els.rows.children)) {
      if (!seen.has(tr.dataset.name)) tr.remove();
    }
    els.empty.hidden = schedules.length > 0;
  }

  async function refresh() {
    clearTimeout(timer);
    try {
      const { data } = await qw.request("GET", "/api/schedules");
      render(Array.isArray(data) ? data : []);
      els.panel.dataset.loaded = "true";
    } catch (err) {
      if (err.status !== 401) showError(`Could not load the schedules: ${err.message}`);
    }
    timer = setTimeout(refresh, document.hidden ? REFRESH_MS * 6 : REFRESH_MS);
  }

  /** POST/DELETE one schedule action; the answer's data, or null after showing the error. */
  async function act(name, action, body) {
    const path = `/api/schedules/${encodeURIComponent(name)}`;
    try {
      const method = action === "delete" ? "DELETE" : "POST";
      const url = action === "delete" ? path : `${path}/${action}`;
      const { data } = await qw.request(method, url, body === undefined ? {} : { body });
      refresh();
      return data || {};
    } catch (err) {
      showError(`${name}: could not ${action}: ${err.message}`);
      return null;
    }
  }

  els.rows.addEventListener("click", async (event) => {
    const target = event.target.closest("button[data-action]");
    if (!target) return;
    const tr = target.closest("tr");
    const name = tr.dataset.name;
    const action = target.dataset.action;
    if (action === "backfill") {
      const open = tr.querySelector(".backfill-form");
      if (open) open.remove();
      else tr.querySelector(".sched-actions").append(backfillForm(name));
      return;
    }
    if (action === "delete" && target.dataset.armed !== "true") {
      // Two clicks to delete: the first one only arms the button.
      target.dataset.armed = "true";
      target.textContent = "Confirm delete";
      return;
    }
    target.disabled = true;
    const data = await act(name, action);
    target.disabled = false;
    if (data && action === "trigger" && data.workflow_id) {
      flash(`${name}: run ${data.workflow_id} enqueued`);
      els.error.dataset.workflowId = data.workflow_id;
    }
  });

  function showType(name) {
    const type = qw.forms.types().find((t) => t.name === name);
    els.inputs.replaceChildren();
    if (!type) return;
    readInput = qw.forms.buildInputFields(type.input_schema || {}, els.inputs, `schedule-${type.name}`).read;
  }

  els.type.addEventListener("change", () => showType(els.type.value));

  document.addEventListener("queue-worker:types", (event) => {
    const types = event.detail;
    els.type.replaceChildren(...types.map((t) => el("option", { value: t.name }, t.name)));
    showType(types.length ? types[0].name : "");
  });

  els.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    delete els.error.dataset.kind;
    qw.forms.markField(els.form, null);
    let input;
    try {
      input = readInput();
    } catch (err) {
      showError(err.message);
      qw.forms.markField(els.form, err.field);
      return;
    }
    const body = { name: els.name.value.trim(), type: els.type.value, input, cron: els.cron.value.trim() };
    if (els.timezone.value.trim()) body.timezone = els.timezone.value.trim();
    els.create.disabled = true;
    try {
      await qw.request("POST", "/api/schedules", { body });
      els.name.value = "";
      refresh();
    } catch (err) {
      showError(`Could not create the schedule: ${err.message}`);
      qw.forms.markField(els.form, err.field);
    } finally {
      els.create.disabled = false;
    }
  });

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refresh();
  });
  refresh();
})();
