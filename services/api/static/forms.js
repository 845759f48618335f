/* Queue Worker page: a form per declared workflow type, generated from its input JSON Schema
 * (GET /api/workflow-types), with when to run it (run_at or delay_seconds) and a timeout.
 *
 * It enqueues with POST /api/workflows/{type}: the input is the body, the options are query
 * parameters. The API checks everything and names the bad field; the form marks that field and
 * shows the message. Data reaches the DOM through textContent and attributes only.
 * app.js (loaded first) shares its request() and showNewWorkflow() on window.queueWorker;
 * schedules.js reuses buildInputFields() from here for its own form.
 */
(function () {
  "use strict";

  const qw = window.queueWorker;
  const $ = (id) => document.getElementById(id);
  const els = {
    panel: $("typed-panel"),
    type: $("typed-type"),
    description: $("typed-description"),
    forms: $("typed-forms"),
    error: $("typed-error"),
  };
  let types = []; // the declared types, as GET /api/workflow-types lists them

  function el(tag, attrs = {}, text = "") {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  function field(labelText, control, hint) {
    const label = el("label", { class: "field" });
    label.append(el("span", { class: "field-label" }, labelText), control);
    if (hint) control.setAttribute("title", hint);
    return label;
  }

  /** One control for one property of an input schema, and how to read it back. */
  function propertyControl(id, name, schema, required) {
    const kind = Array.isArray(schema.type) ? schema.type.find((t) => t !== "null") : schema.type;
    let control;
    let read;
    if (Array.isArray(schema.enum)) {
      control = el("select", { id });
      if (!required) control.append(el("option", { value: "" }, "(none)"));
      schema.enum.forEach((v, i) => control.append(el("option", { value: String(i) }, String(v))));
      read = () => (control.value === "" ? undefined : schema.enum[Number(control.value)]);
    } else if (kind === "boolean") {
      control = el("input", { id, type: "checkbox", class: "checkbox" });
      control.checked = schema.default === true;
      read = () => control.checked;
    } else if (kind === "integer" || kind === "number") {
      control = el("input", { id, type: "number", inputmode: kind === "integer" ? "numeric" : "decimal" });
      control.setAttribute("step", kind === "integer" ? "1" : "any");
      if (schema.minimum !== undefined) control.setAttribute("min", String(schema.minimum));
      if (schema.maximum !== undefined) control.setAttribute("max", String(schema.maximum));
      if (schema.default !== undefined) control.setAttribute("placeholder", `default ${schema.default}`);
      read = () => {
        const raw = control.value.trim();
        if (!raw) return undefined;
        const value = Number(raw);
        if (!Number.isFinite(value) || (kind === "integer" && !Number.isInteger(value))) {
          throw new FieldError(name, `${name} must be ${kind === "integer" ? "an integer" : "a number"}`);
        }
        return value;
      };
    } else if (kind === "string") {
      control = el("input", { id, type: "text", spellcheck: "false" });
      if (schema.default !== undefined) control.setAttribute("placeholder", `default ${schema.default}`);
      read = () => (control.value === "" ? undefined : control.value);
    } else {
      // Objects, arrays and anything else: JSON, checked by the API against the schema.
      control = el("textarea", { id, rows: "2", spellcheck: "false", class: "json-input" });
      control.setAttribute("placeholder", "JSON");
      read = () => {
        const raw = control.value.trim();
        if (!raw) return undefined;
        try {
          return JSON.parse(raw);
        } catch (_) {
          throw new FieldError(name, `${name} is not valid JSON`);
        }
      };
    }
    control.dataset.field = name;
    if (required) control.setAttribute("required", "");
    const label = `${name}${required ? "" : " (optional)"}`;
    return { node: field(label, control, schema.description), read, control };
  }

  class FieldError extends Error {
    constructor(fieldName, message) {
      super(message);
      this.field = fieldName;
    }
  }

  /** Controls for every property of `schema` in `container`; returns read() -> the input. */
  function buildInputFields(schema, container, idPrefix) {
    const required = new Set(Array.isArray(schema.required) ? schema.required : []);
    const controls = [];
    for (const [name, prop] of Object.entries(schema.properties || {})) {
      const made = propertyControl(`${idPrefix}-${name}`, name, prop || {}, required.has(name));
      controls.push([name, made]);
      container.append(made.node);
    }
    return {
      read() {
        const input = {};
        for (const [name, made] of controls) {
          const value = made.read();
          if (value !== undefined) input[name] = value;
          else if (required.has(name)) throw new FieldError(name, `${name} is required`);
        }
        return input;
      },
      controls: new Map(controls.map(([name, made]) => [name, made.control])),
    };
  }

  /** Mark the control the API (or the form) named, e.g. "num_steps" or "input.num_steps". */
  function markField(form, fieldName) {
    form.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
    if (!fieldName) return;
    const bare = fieldName.replace(/^input\./, "").split(/[.[]/)[0];
    const target = Array.from(form.querySelectorAll("[data-field]")).find((n) => n.dataset.field === bare);
    if (target) {
      target.setAttribute("aria-invalid", "true");
      target.focus();
    }
  }

  /** An RFC 3339 time (UTC) from a datetime-local value, read as the browser's local time. */
  function localToRfc3339(value) {
    const when = new Date(value);
    return Number.isNaN(when.getTime()) ? null : when.toISOString();
  }

  function showError(message) {
    els.error.textContent = message || "";
    els.error.hidden = !message;
  }

  /** The when/timeout controls every typed form ends with. */
  function optionFields(form, prefix) {
    const runAt = el("input", { id: `${prefix}-run-at`, type: "datetime-local", step: "1" });
    runAt.dataset.field = "run_at";
    const delay = el("input", { id: `${prefix}-delay`, type: "number", min: "0", step: "any" });
    delay.setAttribute("placeholder", "now");
    delay.dataset.field = "delay_seconds";
    const timeout = el("input", { id: `${prefix}-timeout`, type: "number", min: "0", step: "any" });
    timeout.setAttribute("placeholder", "none");
    timeout.dataset.field = "timeout_seconds";
    const row = el("div", { class: "form-grid options" });
    row.append(
      field("Run at (local time)", runAt, "Optional: an absolute start time, instead of a delay"),
      field("Delay (seconds)", delay, "Optional: hold it back this long"),
      field("Timeout (seconds)", timeout, "Optional: cancel it if unfinished this long after it starts"),
    );
    form.append(row);
    return () => {
      const params = new URLSearchParams();
      if (runAt.value) {
        const at = localToRfc3339(runAt.value);
        if (!at) throw new FieldError("run_at", "run_at is not a valid time");
        params.set("run_at", at);
      }
      if (delay.value.trim()) params.set("delay_seconds", delay.value.trim());
      if (timeout.value.trim()) params.set("timeout_seconds", timeout.value.trim());
      return params;
    };
  }

  function buildForm(type) {
    const prefix = `typed-${type.name}`;
    const form = el("form", { class: "typed-form", novalidate: "" });
    form.dataset.type = type.name;
    const inputs = el("div", { class: "form-grid" });
    form.append(inputs);
    const input = buildInputFields(type.input_schema || {}, inputs, prefix);
    const options = optionFields(form, prefix);
    const button = el("button", { class: "button primary", type: "submit", id: `${prefix}-submit` }, `Enqueue ${type.name}`);
    form.append(button);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      showError("");
      markField(form, null);
      let body;
      let params;
      try {
        body = input.read();
        params = options();
      } catch (err) {
        showError(err.message);
        markField(form, err.field);
        return;
      }
      button.disabled = true;
      try {
        const query = params.toString();
        const url = `/api/workflows/${encodeURIComponent(type.name)}${query ? `?${query}` : ""}`;
        const { data } = await qw.request("POST", url, { body });
        qw.showNewWorkflow(Object.assign({ created_at: new Date().toISOString() }, data));
      } catch (err) {
        showError(`Could not enqueue ${type.name}: ${err.message}`);
        markField(form, err.field);
      } finally {
        button.disabled = false;
      }
    });
    return form;
  }

  function showType(name) {
    const type = types.find((t) => t.name === name);
    els.description.textContent = type ? type.description : "";
    for (const form of els.forms.children) form.hidden = form.dataset.type !== name;
    showError("");
  }

  async function load() {
    try {
      const { data } = await qw.request("GET", "/api/workflow-types");
      types = Array.isArray(data) ? data : [];
    } catch (err) {
      if (err.status === 401) {
        // Built once a token is given: app.js polls again then, and so do we.
        setTimeout(load, 2000);
        return;
      }
      showError(`Could not load the workflow types: ${err.message}`);
      setTimeout(load, 5000);
      return;
    }
    els.type.replaceChildren(...types.map((t) => el("option", { value: t.name }, t.name)));
    els.forms.replaceChildren(...types.map(buildForm));
    showType(types.length ? types[0].name : "");
    els.panel.dataset.ready = "true";
    document.dispatchEvent(new CustomEvent("queue-worker:types", { detail: types }));
  }

  els.type.addEventListener("change", () => showType(els.type.value));
  qw.forms = { buildInputFields, markField, FieldError, localToRfc3339, types: () => types };
  load();
})();
