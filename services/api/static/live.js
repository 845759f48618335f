/* Live updates pushed by the API over Server-Sent Events (EventSource), for app.js and the other
 * page scripts. The server runs one database poller per process for every open stream, so an
 * open page costs it nothing per second; app.js keeps polling as the fallback when a stream
 * cannot be held (an old server, a proxy that refuses streams, a browser without EventSource).
 *
 * EventSource cannot send an Authorization header: when the page has an API token it goes as
 * ?access_token=, which the API accepts on its two stream paths only (services/api/auth.py).
 * EventSource reconnects by itself and sends Last-Event-ID, so the server resumes where the
 * stream broke (the changes since, or a fresh snapshot), never a gap.
 */
(function () {
  "use strict";

  // Errors in a row (each one a failed reconnect) before handing back to polling.
  const FAILURES_BEFORE_FALLBACK = 3;
  // The server sends the current state at once; nothing by then means something between us
  // buffers the stream (a proxy): poll instead.
  const FIRST_EVENT_MS = 10000;

  function withToken(path, params, token) {
    const url = new URL(path, window.location.href);
    for (const [k, v] of params) url.searchParams.append(k, v);
    if (token) url.searchParams.set("access_token", token);
    return url.pathname + url.search;
  }

  /** The next page's URL from a `list` event, if it points back at this API; else null. */
  function safeNextUrl(next) {
    if (typeof next !== "string") return null;
    const url = new URL(next, window.location.href);
    if (url.origin !== window.location.origin || url.pathname !== "/api/workflows") return null;
    return url.pathname + url.search;
  }

  function parse(event) {
    try {
      return JSON.parse(event.data);
    } catch (_) {
      return null;
    }
  }

  /**
   * Opens one EventSource and reports through `h`: onOpen(), onDown() once when it gives up
   * (then nothing more is called), and `on[name](data)` per named event. Returns {close} or
   * null when the browser has no EventSource.
   */
  function open(url, h) {
    if (typeof window.EventSource !== "function") return null;
    const source = new window.EventSource(url);
    let failures = 0;
    let closed = false;
    const close = () => {
      closed = true;
      clearTimeout(watchdog);
      source.close();
    };
    const watchdog = setTimeout(() => {
      if (closed) return;
      close();
      h.onDown();
    }, FIRST_EVENT_MS);
    source.addEventListener("open", () => {
      failures = 0;
      if (!closed && h.onOpen) h.onOpen();
    });
    source.addEventListener("error", () => {
      if (closed) return;
      failures += 1;
      // CLOSED: the browser gave up (a 401, a 404, not an event stream). Otherwise it retries.
      if (source.readyState === window.EventSource.CLOSED || failures >= FAILURES_BEFORE_FALLBACK) {
        close();
        h.onDown();
      }
    });
    for (const name of Object.keys(h.on)) {
      source.addEventListener(name, (event) => {
        const data = parse(event);
        clearTimeout(watchdog);
        if (!closed && data !== null) h.on[name](data);
      });
    }
    return { close };
  }

  /**
   * The list page at `listUrl` (a GET /api/workflows URL), kept current by
   * GET /api/workflows/events with the same parameters: onPage(items, nextUrl) after each
   * change, onQueues(queues) when the queue counts change, onDown() when polling must take over.
   */
  function openList(listUrl, token, { onPage, onQueues, onOpen, onDown }) {
    const params = new URL(listUrl, window.location.href).searchParams;
    const rows = new Map(); // workflow_id -> row, as the last events left it
    let order = [];
    return open(withToken("/api/workflows/events", params, token), {
      onOpen,
      onDown,
      on: {
        list(d) {
          if (d.snapshot) rows.clear();
          for (const wf of Array.isArray(d.workflows) ? d.workflows : []) {
            if (wf && typeof wf.workflow_id === "string") rows.set(wf.workflow_id, wf);
          }
          for (const id of Array.isArray(d.removed) ? d.removed : []) rows.delete(id);
          if (Array.isArray(d.order)) order = d.order;
          onPage(order.map((id) => rows.get(id)).filter(Boolean), safeNextUrl(d.next));
        },
        queues(d) {
          if (Array.isArray(d)) onQueues(d);
        },
      },
    });
  }

  /**
   * One workflow (GET /api/workflows/{id}/events): onState(wf) now and after each change;
   * onEnd(wf) after a terminal status (the server then ends the stream); onDown() as above.
   */
  function openWorkflow(workflowId, token, { onState, onEnd, onDown }) {
    const path = `/api/workflows/${encodeURIComponent(workflowId)}/events`;
    let handle = null;
    const terminal = new Set(["SUCCESS", "ERROR", "CANCELLED", "MAX_RECOVERY_ATTEMPTS_EXCEEDED"]);
    handle = open(withToken(path, [], token), {
      onDown,
      on: {
        message(wf) {
          onState(wf);
          if (terminal.has(wf.workflow_status)) {
            handle.close(); // or EventSource would reconnect to a finished stream
            if (onEnd) onEnd(wf);
          }
        },
        deleted() {
          handle.close(); // removed by retention while watched
          if (onEnd) onEnd(null);
        },
      },
    });
    return handle;
  }

  window.QueueWorkerLive = { openList, openWorkflow };
})();
