/* Queue Worker page: shows one page of workflows and keeps it live; enqueues, cancels, resumes.
 *
 * Live: the page on screen is fed by the API's event stream (live.js); the polling below is the
 * fallback, used while no stream can be held, and the stream is tried again every minute.
 *
 * Rules this file keeps, because the database may hold 100k+ workflows and the page polls:
 *  - only ever fetch one page (PAGE_SIZE rows) of /api/workflows, never the whole list;
 *  - at most one poll in flight; the next one is scheduled when the previous one has finished,
 *    slower when the tab is hidden, with exponential backoff while the API is unreachable;
 *  - table rows are keyed by workflow_id and updated in place (only what changed is written);
 *  - data reaches the DOM through textContent and attributes only, never innerHTML.
 * No framework, no build step: this file is served as-is from /static/app.js.
 */
(function () {
  "use strict";

  const PAGE_SIZE = 50;
  const POLL_MS = 1000; // visible tab, healthy API
  const HIDDEN_POLL_MS = 15000; // background tab: keep the data roughly fresh, cheaply
  const MAX_BACKOFF_MS = 30000; // ceiling of the retry delay while requests fail
  const REQUEST_TIMEOUT_MS = 10000;
  const TOKEN_KEY = "queue-worker.api-token"; // sessionStorage: gone when the tab closes
  const STREAM_RETRY_MS = 60000; // after a stream gave up: poll, and try a stream again then

  const ACTIVE = new Set(["ENQUEUED", "DELAYED", "PENDING"]);
  const RESUMABLE = new Set(["CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"]);

  const $ = (id) => document.getElementById(id);
  const els = {
    live: $("live"),
    liveText: $("live-text"),
    notice: $("connection-notice"),
    noticeText: $("connection-notice-text"),
    queueCards: $("queue-cards"),
    form: $("enqueue-form"),
    numSteps: $("num-steps"),
    stepSeconds: $("step-seconds"),
    priority: $("priority"),
    partitionKey: $("partition-key"),
    enqueueButton: $("enqueue-button"),
    enqueueError: $("enqueue-error"),
    actionError: $("action-error"),
    filter: $("status-filter"),
    newer: $("newer-button"),
    older: $("older-button"),
    pageLabel: $("page-label"),
    table: $("workflow-table"),
    tbody: $("workflow-rows"),
    empty: $("empty-state"),
    emptyTitle: $("empty-title"),
    emptyHint: $("empty-hint"),
    loading: $("loading-state"),
    rowTemplate: $("row-template"),
    authPanel: $("auth-panel"),
    authHint: $("auth-hint"),
    tokenForm: $("token-form"),
    tokenInput: $("api-token"),
    forgetToken: $("forget-token"),
  };

  const state = {
    filter: "", // comma-separated statuses, "" for all
    pageUrl: "", // URL of the page on screen
    backStack: [], // URLs of the newer pages, for "Newer"; empty on the first (live) page
    nextUrl: null, // from the Link rel="next" header of the page on screen
    rows: new Map(), // workflow_id -> row record (see createRow)
    queueCards: new Map(), // queue_name -> card record
    loaded: false, // the page on screen has been fetched at least once
    failures: 0, // consecutive failed polls
    lastOkAt: null,
    timer: null,
    inFlight: null, // AbortController of the running poll
    // Bumped whenever what is on screen changes under a running poll (navigation, enqueue,
    // cancel): that poll's answer may be stale and is dropped.
    generation: 0,
    token: loadToken(), // bearer token for /api/*, when the server was started with API_TOKENS
    authNeeded: false, // the API said 401: polling waits for a token
    stream: null, // the open live stream (live.js) while it feeds the page; polls pause then
    streamRetryAt: 0, // Date.now() before which no new stream is tried
  };

  // ---------------------------------------------------------------------------------------------
  // HTTP

  class HttpError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function readJson(res) {
    try {
      return await res.json();
    } catch (_) {
      return null;
    }
  }

  function errorMessage(body, res) {
    const message = body && body.error && body.error.message;
    if (typeof message === "string" && message) return message;
    return `HTTP ${res.status} ${res.statusText || ""}`.trim();
  }

  async function request(method, url, { body, signal } = {}) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    let res;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
        cache: "no-store",
        credentials: "same-origin",
      });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new HttpError(0, "Could not reach the API");
    }
    const data = await readJson(res);
    if (res.status === 401) needToken();
    if (!res.ok) {
      const err = new HttpError(res.status, errorMessage(data, res));
      err.field = (data && data.error && data.error.field) || null; // the field the API names
      throw err;
    }
    return { data, link: res.headers.get("Link") };
  }

  /** The URL of rel="next" in a Link header, if it points back at this API; else null. */
  function parseNextLink(header) {
    if (!header) return null;
    const match = /<([^>]*)>\s*;\s*rel="?next"?/i.exec(header);
    if (!match) return null;
    const url = new URL(match[1], window.location.href);
    if (url.origin !== window.location.origin || url.pathname !== "/api/workflows") return null;
    return url.pathname + url.search;
  }

  function firstPageUrl() {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
    if (state.filter) params.set("status", state.filter);
    return `/api/workflows?${params}`;
  }

  // ---------------------------------------------------------------------------------------------
  // Polling

  function nextDelay() {
    if (state.failures > 0) {
      // 2 s, 4 s, 8 s ... capped, with jitter so many open tabs do not retry in lockstep.
      const base = Math.min(MAX_BACKOFF_MS, POLL_MS * 2 ** state.failures);
      return base * (0.8 + Math.random() * 0.4);
    }
    return document.hidden ? HIDDEN_POLL_MS : POLL_MS;
  }

  function schedule(delay) {
    clearTimeout(state.timer);
    state.timer = setTimeout(poll, delay);
  }

  /** After a successful poll: hand the page to an event stream (live.js) if one may be tried.
   *  True if one now feeds the page; polls then wait until it gives up (onDown). */
  function openStream() {
    const live = window.QueueWorkerLive;
    if (state.stream || !live || state.failures || Date.now() < state.streamRetryAt) {
      return Boolean(state.stream);
    }
    const stream = live.openList(state.pageUrl, state.token, {
      onPage(items, nextUrl) {
        renderPage(items, nextUrl);
        setHealthy();
      },
      onQueues: renderQueues,
      onOpen: () => (els.live.dataset.transport = "stream"),
      onDown() {
        if (state.stream !== stream) return;
        state.stream = null;
        state.streamRetryAt = Date.now() + STREAM_RETRY_MS;
        els.live.dataset.transport = "poll";
        schedule(0); // polling takes over (and shows a lost connection or a 401 as usual)
      },
    });
    state.stream = stream;
    return stream !== null;
  }

  function closeStream() {
    if (state.stream) state.stream.close();
    state.stream = null;
  }

  async function poll() {
    clearTimeout(state.timer);
    state.timer = null;
    if (state.stream) return; // the event stream feeds the page; polling is the fallback
    if (state.inFlight) return; // never two at once; the running one schedules the next
    const generation = state.generation;
    const controller = new AbortController();
    state.inFlight = controller;
    const timeout = setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
    try {
      const [page, queues] = await Promise.all([
        request("GET", state.pageUrl, { signal: controller.signal }),
        request("GET", "/api/queues", { signal: controller.signal }),
      ]);
      if (generation !== state.generation) return;
      renderPage(page.data, parseNextLink(page.link));
      renderQueues(queues.data);
      setHealthy();
    } catch (err) {
      if (generation !== state.generation) return; // superseded, not a failure
      if (err instanceof HttpError && err.status === 401) return; // needToken() took over
      if (err instanceof HttpError && err.status === 400 && state.backStack.length) {
        // A cursor the API no longer accepts (e.g. after an upgrade): start over at page 1.
        goToFirstPage();
        return;
      }
      setFailed(err);
    } finally {
      clearTimeout(timeout);
      if (state.inFlight === controller) state.inFlight = null;
      // While a token is needed there is nothing to poll for; submitting one polls again.
      if (generation === state.generation && !state.authNeeded && !openStream()) {
        schedule(nextDelay());
      }
    }
  }

  /** Poll at once, dropping the answer of any poll that is still running. */
  function pollNow() {
    closeStream(); // reopened after this poll, for what is on screen now (page, filter, token)
    state.generation += 1;
    if (state.inFlight) {
      state.inFlight.abort();
      state.inFlight = null;
    }
    poll();
  }

  function setHealthy() {
    state.failures = 0;
    state.lastOkAt = new Date();
    els.notice.hidden = true;
    els.live.dataset.state = "live";
    setText(els.liveText, state.backStack.length ? "Auto-refresh" : "Live");
  }

  function setFailed(err) {
    state.failures += 1;
    els.live.dataset.state = "offline";
    setText(els.liveText, "Offline");
    let text = "Connection lost, retrying…";
    if (err instanceof HttpError && err.status >= 400) text += ` (${err.message})`;
    if (state.lastOkAt) text += ` Last update ${state.lastOkAt.toLocaleTimeString()}.`;
    setText(els.noticeText, text);
    els.notice.hidden = false;
  }

  document.addEventListener("visibilitychange", () => {
    // Back in view: refresh now instead of waiting out the slow background delay.
    if (!document.hidden && !state.inFlight && !state.authNeeded) poll();
  });
  window.addEventListener("online", () => {
    if (!state.inFlight && !state.authNeeded) poll();
  });

  // ---------------------------------------------------------------------------------------------
  // API token (only when the server was started with API_TOKENS; the page itself is public)

  function loadToken() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY) || null;
    } catch (_) {
      return null; // storage disabled: the token then lasts until the page is reloaded
    }
  }

  function saveToken(token) {
    state.token = token;
    try {
      if (token) window.sessionStorage.setItem(TOKEN_KEY, token);
      else window.sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      /* keep it in memory only */
    }
    els.forgetToken.hidden = !token;
  }

  /** The API answered 401: ask for a token and stop polling until there is one. */
  function needToken() {
    const firstTime = !state.authNeeded;
    state.authNeeded = true;
    els.notice.hidden = true;
    els.live.dataset.state = "locked";
    setText(els.liveText, "Token needed");
    setText(
      els.authHint,
      state.token
        ? "The server refused this token. Paste a valid one."
        : "Paste one of the API tokens configured on the server (API_TOKENS).",
    );
    els.authPanel.hidden = false;
    if (firstTime) els.tokenInput.focus();
  }

  els.tokenForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const token = els.tokenInput.value.trim();
    // Header values must be ASCII; the server's tokens are printable ASCII without spaces.
    if (!token || !/^[\x21-\x7e]+$/.test(token)) {
      setText(els.authHint, "A token is printable ASCII without spaces.");
      return;
    }
    saveToken(token);
    els.tokenInput.value = "";
    state.authNeeded = false;
    state.streamRetryAt = 0; // the stream may have failed for want of this token
    els.authPanel.hidden = true;
    setText(els.liveText, "Connecting…");
    els.live.dataset.state = "connecting";
    pollNow();
  });

  els.forgetToken.addEventListener("click", () => {
    saveToken(null);
    pollNow(); // a server without tokens keeps working; one with tokens asks again
  });

  // ---------------------------------------------------------------------------------------------
  // Workflow rows

  function setText(el, text) {
    if (el.textContent !== text) el.textContent = text;
  }

  function setAttr(el, name, value) {
    if (value === null || value === undefined) {
      if (el.hasAttribute(name)) el.removeAttribute(name);
    } else if (el.getAttribute(name) !== String(value)) {
      el.setAttribute(name, String(value));
    }
  }

  function intOrNull(value) {
    return Number.isInteger(value) ? value : null;
  }

  function createRow(workflowId) {
    const tr = els.rowTemplate.content.firstElementChild.cloneNode(true);
    tr.dataset.workflowId = workflowId;
    const q = (selector) => tr.querySelector(selector);
    const record = {
      tr,
      id: q(".wf-id"),
      meta: q(".wf-meta"),
      badge: q(".badge"),
      bar: q(".progress"),
      fill: q(".progress-fill"),
      pct: q(".progress-pct"),
      text: q(".progress-text"),
      created: q(".created"),
      duration: q(".duration"),
      cancel: q('[data-action="cancel"]'),
      resume: q('[data-action="resume"]'),
      width: "",
    };
    setText(record.id, workflowId);
    record.id.title = workflowId;
    return record;
  }

  function updateRow(record, wf) {
    const status = typeof wf.workflow_status === "string" ? wf.workflow_status : "UNKNOWN";
    if (record.tr.dataset.status !== status) record.tr.dataset.status = status;
    setText(record.badge, status.replace(/_/g, " "));
    setAttr(record.badge, "title", status);

    const meta = [wf.workflow_name, wf.queue_name].filter((v) => typeof v === "string" && v);
    if (Number.isInteger(wf.priority) && wf.priority > 0) meta.push(`priority ${wf.priority}`);
    if (typeof wf.partition_key === "string" && wf.partition_key !== "default") {
      meta.push(`tenant ${wf.partition_key}`);
    }
    setText(record.meta, meta.join(" · "));

    updateProgress(record, intOrNull(wf.steps_completed), intOrNull(wf.num_steps));

    const created = wf.created_at ? new Date(wf.created_at) : null;
    setAttr(record.created, "datetime", wf.created_at || null);
    setAttr(record.created, "title", created ? created.toLocaleString() : null);
    setText(record.created, created ? relativeTime(created) : "—");
    setText(record.duration, durationText(status, wf));

    record.cancel.hidden = !ACTIVE.has(status);
    record.resume.hidden = !RESUMABLE.has(status);
  }

  function updateProgress(record, done, total) {
    const bar = record.bar;
    let width = "0%";
    if (total !== null && total > 0 && done !== null) {
      const now = Math.min(Math.max(done, 0), total);
      // Floor, so the bar shows 100% only when the last step has really completed.
      const pct = Math.floor((now * 100) / total);
      setAttr(bar, "aria-valuemax", total);
      setAttr(bar, "aria-valuenow", now);
      setAttr(bar, "aria-valuetext", `${now} of ${total} steps`);
      setText(record.text, `${now} / ${total}`);
      setText(record.pct, `${pct}%`);
      width = `${pct}%`;
    } else {
      // Unknown progress (no event yet and no num_steps recorded): an indeterminate bar.
      setAttr(bar, "aria-valuemax", total !== null && total > 0 ? total : null);
      setAttr(bar, "aria-valuenow", null);
      setAttr(bar, "aria-valuetext", "progress unknown");
      setText(record.text, total !== null ? `? / ${total}` : "—");
      setText(record.pct, "");
    }
    if (record.width !== width) {
      record.fill.style.width = width; // CSSOM, which the page's CSP allows (style attrs it does not)
      record.width = width;
    }
  }

  /** Put `items` on screen in order, reusing the rows already there. */
  function reconcile(items) {
    const wanted = new Map();
    for (const wf of items) {
      if (wf && typeof wf.workflow_id === "string" && !wanted.has(wf.workflow_id)) {
        wanted.set(wf.workflow_id, wf);
      }
    }
    // Remove the rows that left the page first, so the rows that stay need no moving.
    for (const [id, record] of state.rows) {
      if (!wanted.has(id)) {
        record.tr.remove();
        state.rows.delete(id);
      }
    }
    let slot = els.tbody.firstElementChild;
    for (const [id, wf] of wanted) {
      let record = state.rows.get(id);
      if (!record) {
        record = createRow(id);
        state.rows.set(id, record);
      }
      updateRow(record, wf);
      if (record.tr === slot) {
        slot = slot.nextElementSibling;
      } else {
        els.tbody.insertBefore(record.tr, slot); // moves it if it was elsewhere
      }
    }
  }

  function renderPage(items, nextUrl) {
    const list = Array.isArray(items) ? items : [];
    state.loaded = true;
    state.nextUrl = nextUrl;
    reconcile(list);
    els.table.setAttribute("aria-busy", "false");
    els.loading.hidden = true;
    renderEmptyState(list.length === 0);
    renderPager();
  }

  function renderEmptyState(isEmpty) {
    els.empty.hidden = !isEmpty;
    els.table.classList.toggle("is-empty", isEmpty);
    if (!isEmpty) return;
    if (state.backStack.length) {
      setText(els.emptyTitle, "No older workflows");
      setText(els.emptyHint, "Go back to newer ones with “Newer”.");
    } else if (state.filter) {
      setText(els.emptyTitle, "No workflows with this status");
      setText(els.emptyHint, "Pick another status, or “All statuses”.");
    } else {
      setText(els.emptyTitle, "No workflows yet");
      setText(els.emptyHint, "Enqueue one above and watch it run.");
    }
  }

  function renderPager() {
    els.newer.disabled = state.backStack.length === 0;
    els.older.disabled = !state.nextUrl;
    setText(els.pageLabel, `Page ${state.backStack.length + 1}`);
    els.table.dataset.page = String(state.backStack.length + 1);
  }

  // ---------------------------------------------------------------------------------------------
  // Paging and filtering. The first page is live (new workflows appear at its top); older pages
  // are fixed windows of the list (their rows still update) reached through Link rel="next".

  function showPage(url) {
    state.pageUrl = url;
    state.nextUrl = null;
    els.table.setAttribute("aria-busy", "true");
    renderPager();
    els.older.disabled = true; // until this page's Link header has arrived
    pollNow();
  }

  function goToFirstPage() {
    state.backStack = [];
    showPage(firstPageUrl());
  }

  els.older.addEventListener("click", () => {
    if (!state.nextUrl || els.table.getAttribute("aria-busy") === "true") return;
    state.backStack.push(state.pageUrl);
    showPage(state.nextUrl);
  });

  els.newer.addEventListener("click", () => {
    if (!state.backStack.length) return;
    showPage(state.backStack.pop());
  });

  els.filter.addEventListener("change", () => {
    state.filter = els.filter.value;
    goToFirstPage();
  });

  // ---------------------------------------------------------------------------------------------
  // Enqueue

  function showFormError(message) {
    setText(els.enqueueError, message || "");
    els.enqueueError.hidden = !message;
  }

  /** The request body from the form, or a message saying what to fix. */
  function readForm() {
    const body = {};
    const steps = els.numSteps.value.trim();
    if (!steps) return { error: "Enter the number of steps." };
    body.num_steps = Number(steps);
    const seconds = els.stepSeconds.value.trim();
    if (seconds) body.step_seconds = Number(seconds);
    const priority = els.priority.value.trim();
    if (priority) body.priority = Number(priority);
    const partitionKey = els.partitionKey.value.trim();
    if (partitionKey) body.partition_key = partitionKey;
    // The API validates ranges and types and says what is wrong; we show its message.
    return { body };
  }

  function filterShows(status) {
    return !state.filter || state.filter.split(",").includes(status);
  }

  /** Put a just-enqueued workflow at the top of the live page without waiting for a poll. */
  function showNewWorkflow(wf) {
    if (state.backStack.length || !filterShows(wf.workflow_status)) {
      if (!filterShows(wf.workflow_status)) {
        state.filter = "";
        els.filter.value = "";
      }
      state.backStack = [];
      state.pageUrl = firstPageUrl();
      state.nextUrl = null;
      reconcile([]); // the rows of the old view do not belong on this one
      renderPager();
    }
    let record = state.rows.get(wf.workflow_id);
    if (!record) {
      record = createRow(wf.workflow_id);
      state.rows.set(wf.workflow_id, record);
    }
    updateRow(record, wf);
    els.tbody.prepend(record.tr);
    record.tr.classList.remove("row-new");
    void record.tr.offsetWidth; // restart the highlight animation
    record.tr.classList.add("row-new");
    // Keep one page's worth of rows; the poll below brings the exact page.
    while (state.rows.size > PAGE_SIZE) {
      const last = els.tbody.lastElementChild;
      state.rows.delete(last.dataset.workflowId);
      last.remove();
    }
    els.loading.hidden = true;
    renderEmptyState(false);
    pollNow();
  }

  els.form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const { body, error } = readForm();
    if (error) {
      showFormError(error);
      els.numSteps.focus();
      return;
    }
    showFormError("");
    els.enqueueButton.disabled = true;
    els.enqueueButton.classList.add("is-busy");
    try {
      const { data } = await request("POST", "/api/workflows", { body });
      const wf = Object.assign({ created_at: new Date().toISOString() }, data);
      if (typeof wf.workflow_id !== "string") throw new Error("the API answered without an id");
      showNewWorkflow(wf);
    } catch (err) {
      showFormError(`Could not enqueue: ${err.message}`);
    } finally {
      els.enqueueButton.disabled = false;
      els.enqueueButton.classList.remove("is-busy");
    }
  });

  els.tbody.addEventListener("animationend", (event) => {
    if (event.animationName === "row-flash") event.target.classList.remove("row-new");
  });

  // ---------------------------------------------------------------------------------------------
  // Cancel / resume (one delegated listener for every row's buttons)

  function showActionError(message) {
    setText(els.actionError, message || "");
    els.actionError.hidden = !message;
  }

  els.tbody.addEventListener("click", async (event) => {
    const button = event.target.closest("button[data-action]");
    if (!button || button.disabled) return;
    const row = button.closest("tr");
    const id = row.dataset.workflowId;
    const action = button.dataset.action; // "cancel" or "resume"
    button.disabled = true;
    try {
      const { data } = await request(
        "POST",
        `/api/workflows/${encodeURIComponent(id)}/${action}`,
      );
      showActionError("");
      const record = state.rows.get(id);
      if (record && data && data.workflow_id === id) updateRow(record, data);
      pollNow(); // and drop a poll that started before the change
    } catch (err) {
      showActionError(`Could not ${action} ${id}: ${err.message}`);
    } finally {
      button.disabled = false;
    }
  });

  // ---------------------------------------------------------------------------------------------
  // Queue summary cards

  function createQueueCard(name) {
    const card = document.createElement("article");
    card.className = "card queue-card";
    card.dataset.queue = name;
    const head = document.createElement("div");
    head.className = "queue-head";
    const title = document.createElement("h3");
    title.className = "queue-name";
    title.textContent = name;
    const note = document.createElement("span");
    note.className = "queue-note";
    head.append(title, note);
    const stats = document.createElement("dl");
    stats.className = "stats";
    const stat = (label, cls) => {
      const wrap = document.createElement("div");
      wrap.className = `stat ${cls}`;
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      wrap.append(dt, dd);
      stats.append(wrap);
      return dd;
    };
    const record = {
      card,
      note,
      enqueued: stat("Enqueued", "stat-enqueued"),
      running: stat("Running", "stat-running"),
      oldest: stat("Oldest wait", "stat-oldest"),
    };
    card.append(head, stats);
    return record;
  }

  function renderQueues(queues) {
    const list = Array.isArray(queues) ? queues : [];
    const seen = new Set();
    for (const q of list) {
      if (!q || typeof q.queue_name !== "string") continue;
      seen.add(q.queue_name);
      let record = state.queueCards.get(q.queue_name);
      if (!record) {
        record = createQueueCard(q.queue_name);
        state.queueCards.set(q.queue_name, record);
        els.queueCards.append(record.card);
      }
      const enqueued = Number(q.enqueued) || 0;
      setText(record.enqueued, enqueued.toLocaleString());
      setText(record.running, (Number(q.pending) || 0).toLocaleString());
      const age = Number(q.oldest_enqueued_age_seconds) || 0;
      setText(record.oldest, enqueued > 0 ? formatDuration(age) : "—");
      record.oldest.classList.toggle("warn", enqueued > 0 && age >= 60);
      let note = "";
      if (q.registered === false) note = "no worker has registered it";
      else if (Number.isInteger(q.worker_concurrency)) {
        note = `concurrency ${q.worker_concurrency} per worker`;
      }
      // Waiting work a per-tenant or rate limit holds back adds no workers: say how much.
      const held = q.held && typeof q.held === "object" ? q.held : {};
      const limited = ["partition_concurrency", "no_partition_key", "concurrency", "rate_limit"]
        .reduce((sum, reason) => sum + (Number(held[reason]) || 0), 0);
      if (limited > 0) note += `${note ? " · " : ""}${limited.toLocaleString()} held by a limit`;
      setText(record.note, note);
      record.card.classList.toggle("unregistered", q.registered === false);
    }
    for (const [name, record] of state.queueCards) {
      if (!seen.has(name)) {
        record.card.remove();
        state.queueCards.delete(name);
      }
    }
    // The "Loading queues…" placeholder goes once the first answer is in.
    for (const placeholder of els.queueCards.querySelectorAll(".placeholder")) {
      placeholder.remove();
    }
    if (!state.queueCards.size && !els.queueCards.querySelector(".no-queues")) {
      const none = document.createElement("div");
      none.className = "card queue-card no-queues";
      none.textContent = "No queues registered.";
      els.queueCards.append(none);
    } else if (state.queueCards.size) {
      for (const none of els.queueCards.querySelectorAll(".no-queues")) none.remove();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Time formatting

  function formatDuration(seconds) {
    const s = Math.max(0, seconds);
    if (s < 10) return `${s.toFixed(1)} s`;
    if (s < 60) return `${Math.floor(s)} s`;
    if (s < 3600) {
      return `${Math.floor(s / 60)} min ${String(Math.floor(s % 60)).padStart(2, "0")} s`;
    }
    if (s < 86400) {
      return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
    }
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  function relativeTime(date) {
    const seconds = (Date.now() - date.getTime()) / 1000;
    if (!Number.isFinite(seconds)) return "—";
    if (seconds < 5) return "just now";
    if (seconds < 60) return `${Math.floor(seconds)} s ago`;
    if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
    if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
    return date.toLocaleString(undefined, {
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    });
  }

  /** How long it ran (or has been running), or how long it has waited to start. */
  function durationText(status, wf) {
    const ms = (iso) => (iso ? new Date(iso).getTime() : NaN);
    const started = ms(wf.started_at);
    const completed = ms(wf.completed_at);
    if (Number.isFinite(started)) {
      if (Number.isFinite(completed)) return formatDuration((completed - started) / 1000);
      if (status === "PENDING") return formatDuration((Date.now() - started) / 1000);
      return "—";
    }
    const created = ms(wf.created_at);
    if ((status === "ENQUEUED" || status === "DELAYED") && Number.isFinite(created)) {
      return `waiting ${formatDuration((Date.now() - created) / 1000)}`;
    }
    return "—";
  }

  // ---------------------------------------------------------------------------------------------

  // For the page's other scripts (forms.js, schedules.js): one HTTP path (token, errors) and one
  // way to show a new workflow.
  window.queueWorker = Object.assign(window.queueWorker || {}, { request, showNewWorkflow });

  state.pageUrl = firstPageUrl();
  els.forgetToken.hidden = !state.token;
  els.table.setAttribute("aria-busy", "true");
  renderPager();
  poll();
})();
