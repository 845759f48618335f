"""The web page at / in a real headless Chromium, against a real API and worker.

Chromium and chromedriver come from Debian (scripts/test-deps.d/30-chromium.sh installs them);
the driver path is explicit so selenium-manager never downloads anything.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.select import Select

from tests.support import Stack, enqueue, wait_for, wait_status

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=1280,900",
)

# What the page reports about one row, read in one round trip (rows are updated in place, so
# reading through JS also avoids racing a WebElement against the page's own updates).
ROW_STATE_JS = """
const id = CSS.escape(arguments[0]);
const tr = document.querySelector(`#workflow-rows tr[data-workflow-id="${id}"]`);
if (!tr) return null;
const bar = tr.querySelector('[role="progressbar"]');
return {
  status: tr.dataset.status,
  badge: tr.querySelector('.badge').textContent,
  valuenow: bar.getAttribute('aria-valuenow'),
  valuemax: bar.getAttribute('aria-valuemax'),
  text: tr.querySelector('.progress-text').textContent,
  pct: tr.querySelector('.progress-pct').textContent,
  cancel: !tr.querySelector('[data-action="cancel"]').hidden,
  resume: !tr.querySelector('[data-action="resume"]').hidden,
};
"""

PAGE_STATE_JS = """
return {
  ids: Array.from(document.querySelectorAll('#workflow-rows tr')).map(tr => tr.dataset.workflowId),
  page: document.getElementById('page-label').textContent,
  busy: document.getElementById('workflow-table').getAttribute('aria-busy'),
  newer: !document.getElementById('newer-button').disabled,
  older: !document.getElementById('older-button').disabled,
  live: document.getElementById('live').dataset.state,
  empty: !document.getElementById('empty-state').hidden,
  emptyTitle: document.getElementById('empty-title').textContent,
  notice: !document.getElementById('connection-notice').hidden,
  noticeText: document.getElementById('connection-notice-text').textContent,
};
"""


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    options = Options()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    drv = webdriver.Chrome(service=service, options=options)
    try:
        drv.set_page_load_timeout(30)
        yield drv
    finally:
        drv.quit()


def _running_stack(database_url: str, workdir: Path) -> Iterator[Stack]:
    # 0.3 s steps by default, so a bar is seen moving; a short drain so teardown is quick.
    stack = Stack(
        database_url,
        workdir,
        DEFAULT_STEP_SECONDS="0.3",
        WORKER_SHUTDOWN_GRACE_SECONDS="1",
        # New and paused schedules take effect within a second.
        SCHEDULER_POLLING_INTERVAL_SECONDS="1",
    )
    with stack.running():
        yield stack


@pytest.fixture
def stack(database_url: str, tmp_path: Path) -> Iterator[Stack]:
    """API + one worker, once on Postgres and once on SQLite."""
    yield from _running_stack(database_url, tmp_path)


@pytest.fixture
def sqlite_stack(sqlite_url: str, tmp_path: Path) -> Iterator[Stack]:
    yield from _running_stack(sqlite_url, tmp_path)


# ---- helpers -------------------------------------------------------------------------------


def page_state(driver: WebDriver) -> dict[str, Any]:
    state: dict[str, Any] = driver.execute_script(PAGE_STATE_JS)
    return state


def row_state(driver: WebDriver, workflow_id: str) -> dict[str, Any] | None:
    state: dict[str, Any] | None = driver.execute_script(ROW_STATE_JS, workflow_id)
    return state


def open_page(driver: WebDriver, stack: Stack) -> None:
    driver.get(f"{stack.base_url}/")
    assert driver.title == "Queue Worker"
    # The first poll has answered: the page is live and out of its loading state.
    wait_for(
        lambda: page_state(driver)["live"] == "live" and page_state(driver)["busy"] == "false",
        timeout=15,
        what="the page's first successful poll",
    )


def wait_page(driver: WebDriver, label: str, timeout: float = 15) -> dict[str, Any]:
    """Wait until the page labelled `label` has arrived (not just been asked for)."""

    def arrived() -> dict[str, Any] | None:
        state = page_state(driver)
        return state if state["page"] == label and state["busy"] == "false" else None

    result: dict[str, Any] = wait_for(arrived, timeout=timeout, what=f"{label} to load")
    return result


def api_ids(client: httpx.Client, url: str = "/api/workflows?limit=50") -> tuple[list[str], str]:
    resp = client.get(url)
    assert resp.status_code == 200, resp.text
    return [w["workflow_id"] for w in resp.json()], resp.links.get("next", {}).get("url", "")


def resource_urls(driver: WebDriver) -> list[str]:
    urls: list[str] = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    return urls


def assert_only_own_origin(driver: WebDriver, stack: Stack) -> None:
    """Everything the page loaded came from the API's own loopback origin."""
    urls = [driver.current_url, *resource_urls(driver)]
    assert any(u.endswith("/static/app.js") for u in urls), urls
    assert any("/api/workflows" in u for u in urls), urls
    foreign = [u for u in urls if not u.startswith(f"{stack.base_url}/")]
    assert not foreign, f"the page fetched from other origins: {foreign}"


def assert_no_console_errors(driver: WebDriver, expected: tuple[str, ...] = ()) -> None:
    """No script error, CSP violation or failed resource (each logs a SEVERE entry), except
    the `expected` ones (substrings of the message)."""
    entries: list[dict[str, Any]] = driver.get_log("browser")  # type: ignore[no-untyped-call]
    errors = [
        e
        for e in entries
        if e["level"] == "SEVERE" and not any(x in e["message"] for x in expected)
    ]
    assert not errors, errors


def list_requests(driver: WebDriver) -> int:
    return sum(urlsplit(u).path == "/api/workflows" for u in resource_urls(driver))


def stream_subscribers(stack: Stack) -> float:
    for line in httpx.get(f"{stack.base_url}/metrics").text.splitlines():
        if line.startswith("queue_worker_stream_subscribers "):
            return float(line.split()[1])
    raise AssertionError("queue_worker_stream_subscribers is not on /metrics")


def set_input(driver: WebDriver, element_id: str, value: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    if value:
        field.send_keys(value)


def row_button(driver: WebDriver, workflow_id: str, action: str) -> WebElement:
    selector = f'#workflow-rows tr[data-workflow-id="{workflow_id}"] [data-action="{action}"]'
    return driver.find_element(By.CSS_SELECTOR, selector)


# ---- tests ---------------------------------------------------------------------------------


def test_enqueue_shows_live_progress_until_success(
    stack: Stack, driver: WebDriver, tmp_path: Path
) -> None:
    open_page(driver, stack)
    state = page_state(driver)
    assert state["ids"] == []
    assert state["empty"]
    assert state["emptyTitle"] == "No workflows yet"
    wait_for(
        lambda: driver.find_elements(By.CSS_SELECTOR, '[data-queue="workflow-queue"] .stat dd'),
        timeout=10,
        what="the workflow-queue summary card",
    )
    assert driver.find_element(By.ID, "num-steps").get_attribute("value") == "10"

    set_input(driver, "num-steps", "6")
    set_input(driver, "step-seconds", "0.5")
    set_input(driver, "partition-key", "acme")
    clicked = time.monotonic()
    driver.find_element(By.ID, "enqueue-button").click()

    ids: list[str] = wait_for(
        lambda: page_state(driver)["ids"], timeout=10, what="the new row to appear"
    )
    shown_after = time.monotonic() - clicked
    assert len(ids) == 1
    workflow_id = ids[0]
    with stack.client() as client:
        detail = client.get(f"/api/workflows/{workflow_id}").json()
    assert detail["num_steps"] == 6
    assert detail["partition_key"] == "acme"  # the Tenant field
    row = driver.find_element(By.CSS_SELECTOR, f'tr[data-workflow-id="{workflow_id}"]')
    assert "tenant acme" in row.text
    bar = row.find_element(By.CSS_SELECTOR, '[role="progressbar"]')
    assert bar.get_attribute("aria-valuemax") == "6"

    # Watch the bar until it is full; it must pass through values between empty and full.
    seen: set[int] = set()

    def finished() -> bool:
        s = row_state(driver, workflow_id)
        assert s is not None, "the row disappeared"
        if s["valuenow"] is not None:
            seen.add(int(s["valuenow"]))
        return bool(s["valuenow"] == s["valuemax"] == "6" and s["status"] == "SUCCESS")

    wait_for(finished, timeout=60, interval=0.05, what="the bar to reach 6/6 and SUCCESS")
    assert any(0 < v < 6 for v in seen), f"the bar never showed a step in between: {seen}"
    final = row_state(driver, workflow_id)
    assert final is not None
    assert final["badge"] == "SUCCESS"
    assert final["text"] == "6 / 6"
    assert final["pct"] == "100%"
    assert (final["cancel"], final["resume"]) == (False, False)
    # The row was updated in place: the element found while it ran is the one that finished.
    assert row.get_attribute("data-status") == "SUCCESS"
    assert bar.get_attribute("aria-valuenow") == "6"

    # The progress came over the event stream (live.js): the page does not poll meanwhile.
    assert driver.find_element(By.ID, "live").get_attribute("data-transport") == "stream"
    assert stream_subscribers(stack) == 1
    before = list_requests(driver)
    time.sleep(3)
    assert list_requests(driver) == before, "the page polled while its stream was open"

    driver.save_screenshot(str(tmp_path / "page.png"))
    assert_only_own_origin(driver, stack)
    assert_no_console_errors(driver)
    print(f"new row shown {shown_after:.2f}s after the click")


def test_page_polls_when_the_browser_has_no_event_streams(
    sqlite_stack: Stack, driver: WebDriver
) -> None:
    """The fallback: without EventSource the page polls, about once a second, and stays live."""
    driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.EventSource;"}
    )
    open_page(driver, sqlite_stack)
    with sqlite_stack.client() as client:
        workflow_id = enqueue(client, 4, step_seconds=0.5)
    seen: set[str] = set()

    def finished() -> bool:
        s = row_state(driver, workflow_id)
        if s is not None and s["valuenow"] is not None:
            seen.add(s["valuenow"])
        return bool(s and s["status"] == "SUCCESS")

    wait_for(finished, timeout=60, interval=0.05, what="the polled row to reach SUCCESS")
    assert seen & {"1", "2", "3"}, seen
    assert driver.find_element(By.ID, "live").get_attribute("data-transport") is None
    assert stream_subscribers(sqlite_stack) == 0
    before = list_requests(driver)
    time.sleep(3)
    assert 1 <= list_requests(driver) - before <= 5
    assert_no_console_errors(driver)


def test_cancel_resume_and_errors(sqlite_stack: Stack, driver: WebDriver) -> None:
    stack = sqlite_stack
    with stack.client() as client:
        long_id = enqueue(client, 200, step_seconds=0.5)
        wait_status(client, long_id, {"PENDING"})
    open_page(driver, stack)
    wait_for(lambda: row_state(driver, long_id), timeout=10, what="the running row")

    row_button(driver, long_id, "cancel").click()
    wait_for(
        lambda: (s := row_state(driver, long_id)) and s["status"] == "CANCELLED" and s["resume"],
        timeout=15,
        what="the row to show CANCELLED with a Resume button",
    )
    state = row_state(driver, long_id)
    assert state is not None
    assert state["cancel"] is False
    with stack.client() as client:
        assert client.get(f"/api/workflows/{long_id}").json()["workflow_status"] == "CANCELLED"

    row_button(driver, long_id, "resume").click()
    wait_for(
        lambda: (s := row_state(driver, long_id)) and s["status"] in {"ENQUEUED", "PENDING"},
        timeout=15,
        what="the resumed row to be queued or running again",
    )
    row_button(driver, long_id, "cancel").click()
    wait_for(
        lambda: (s := row_state(driver, long_id)) and s["status"] == "CANCELLED",
        timeout=15,
        what="the row to be cancelled again",
    )

    # A value the API rejects: its message is shown and nothing is added.
    set_input(driver, "num-steps", "0")
    driver.find_element(By.ID, "enqueue-button").click()
    error = driver.find_element(By.ID, "enqueue-error")
    wait_for(error.is_displayed, timeout=10, what="the enqueue error")
    assert "num_steps must be an integer from 1 to" in error.text
    set_input(driver, "num-steps", "")
    driver.find_element(By.ID, "enqueue-button").click()
    wait_for(lambda: "Enter the number of steps" in error.text, timeout=5, what="the form check")
    time.sleep(1.5)  # a poll or two later, still the one workflow
    assert page_state(driver)["ids"] == [long_id]
    assert_no_console_errors(
        driver,
        expected=(
            "/api/workflows - Failed to load resource: the server responded with a status of 422",
        ),
    )


def test_paging_older_and_newer(sqlite_stack: Stack, driver: WebDriver, tmp_path: Path) -> None:
    stack = sqlite_stack
    with stack.client() as client:
        for _ in range(120):
            enqueue(client, 1, step_seconds=0)
        first, next_url = api_ids(client)
        second, next_url = api_ids(client, next_url)
        third, next_url = api_ids(client, next_url)
    assert (len(first), len(second), len(third), next_url) == (50, 50, 20, "")

    open_page(driver, stack)
    state = wait_page(driver, "Page 1")
    assert state["ids"] == first
    assert (state["older"], state["newer"]) == (True, False)

    driver.find_element(By.ID, "older-button").click()
    state = wait_page(driver, "Page 2")
    assert state["ids"] == second
    assert not set(state["ids"]) & set(first)
    assert (state["older"], state["newer"]) == (True, True)

    driver.find_element(By.ID, "older-button").click()
    state = wait_page(driver, "Page 3")
    assert state["ids"] == third
    assert (state["older"], state["newer"]) == (False, True)

    driver.find_element(By.ID, "newer-button").click()
    assert wait_page(driver, "Page 2")["ids"] == second
    driver.find_element(By.ID, "newer-button").click()
    state = wait_page(driver, "Page 1")
    assert state["ids"] == first
    assert not state["newer"]

    # The status filter: once all have run, "Enqueued" is empty and "Success" lists them.
    with stack.client() as client:
        wait_for(
            lambda: client.get("/api/workflows?status=ENQUEUED,PENDING&limit=1").json() == [],
            timeout=60,
            what="all 120 workflows to finish",
        )
    Select(driver.find_element(By.ID, "status-filter")).select_by_value("ENQUEUED")
    wait_for(lambda: page_state(driver)["empty"], timeout=10, what="the filtered empty state")
    assert page_state(driver)["emptyTitle"] == "No workflows with this status"
    Select(driver.find_element(By.ID, "status-filter")).select_by_value("SUCCESS")
    state = wait_for(
        lambda: (s := page_state(driver))["ids"] == first and s["busy"] == "false" and s,
        timeout=10,
        what="the SUCCESS filter to list the newest 50",
    )
    statuses = driver.execute_script(
        "return Array.from(document.querySelectorAll('#workflow-rows tr'), tr => tr.dataset.status)"
    )
    assert set(statuses) == {"SUCCESS"}
    driver.save_screenshot(str(tmp_path / "page-many.png"))

    # Only ever one page: every list request asked for 50 rows, never the whole table.
    list_requests = [u for u in resource_urls(driver) if urlsplit(u).path == "/api/workflows"]
    assert list_requests
    assert all(parse_qs(urlsplit(u).query).get("limit") == ["50"] for u in list_requests)
    assert_only_own_origin(driver, stack)
    assert_no_console_errors(driver)


def test_connection_lost_notice_and_recovery(sqlite_stack: Stack, driver: WebDriver) -> None:
    stack = sqlite_stack
    open_page(driver, stack)
    assert not page_state(driver)["notice"]
    assert stack.api is not None
    stack.api.terminate()

    state = wait_for(
        lambda: (s := page_state(driver))["notice"] and s,
        timeout=15,
        what="the connection-lost notice",
    )
    assert "Connection lost, retrying" in state["noticeText"]
    assert state["live"] == "offline"

    stack.start_api()  # same port
    wait_for(
        lambda: not (s := page_state(driver))["notice"] and s["live"] == "live",
        timeout=45,
        what="the page to reconnect and hide the notice",
    )
    # Failed fetches log SEVERE network errors by design here, so console errors are not checked.


API_TOKEN = "browser-test-token-0123456789"


@pytest.fixture
def token_stack(sqlite_url: str, tmp_path: Path) -> Iterator[Stack]:
    """An API started with API_TOKENS (no worker: nothing here needs to run)."""
    stack = Stack(sqlite_url, tmp_path, API_TOKENS=API_TOKEN)
    try:
        stack.start_api()
        yield stack
    finally:
        stack.stop()


def test_token_prompt_when_the_api_needs_a_token(token_stack: Stack, driver: WebDriver) -> None:
    stack = token_stack
    driver.get(f"{stack.base_url}/")
    panel = driver.find_element(By.ID, "auth-panel")
    wait_for(panel.is_displayed, timeout=15, what="the token prompt")
    state = page_state(driver)
    assert state["live"] == "locked"
    assert not state["notice"], "a 401 is not a lost connection"

    set_input(driver, "api-token", "wrong-token-wrong-token")
    driver.find_element(By.ID, "token-button").click()
    hint = driver.find_element(By.ID, "auth-hint")
    wait_for(
        lambda: panel.is_displayed() and "refused" in hint.text,
        timeout=15,
        what="the wrong token to be refused",
    )

    set_input(driver, "api-token", API_TOKEN)
    driver.find_element(By.ID, "token-button").click()
    wait_for(
        lambda: (s := page_state(driver))["live"] == "live" and s["empty"],
        timeout=15,
        what="the page to load with the token",
    )
    assert not panel.is_displayed()
    set_input(driver, "num-steps", "2")
    driver.find_element(By.ID, "enqueue-button").click()
    (workflow_id,) = wait_for(lambda: page_state(driver)["ids"], timeout=10, what="the new row")
    with httpx.Client(base_url=stack.base_url) as client:
        resp = client.get(
            f"/api/workflows/{workflow_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
    assert resp.status_code == 200

    # The token lasts for the tab (sessionStorage), and "Forget token" drops it.
    driver.refresh()
    wait_for(
        lambda: page_state(driver)["ids"] == [workflow_id], timeout=15, what="the reloaded page"
    )
    assert not driver.find_element(By.ID, "auth-panel").is_displayed()
    driver.find_element(By.ID, "forget-token").click()
    wait_for(
        driver.find_element(By.ID, "auth-panel").is_displayed,
        timeout=15,
        what="the prompt after forgetting the token",
    )
    assert_no_console_errors(driver, expected=("status of 401 (Unauthorized)",))


# ---- typed forms and schedules (forms.js, schedules.js) -------------------------------------

SCHEDULE_ROW_JS = """
const tr = document.querySelector(`#schedule-rows tr[data-name="${CSS.escape(arguments[0])}"]`);
if (!tr) return null;
return {
  status: tr.dataset.status,
  cron: tr.querySelector('.sched-cron').textContent,
  pause: !tr.querySelector('[data-action="pause"]').hidden,
  resume: !tr.querySelector('[data-action="resume"]').hidden,
};
"""


def schedule_row(driver: WebDriver, name: str) -> dict[str, Any] | None:
    state: dict[str, Any] | None = driver.execute_script(SCHEDULE_ROW_JS, name)
    return state


def visible_text(driver: WebDriver, element_id: str) -> str:
    element = driver.find_element(By.ID, element_id)
    return element.text if element.is_displayed() else ""


def test_typed_forms_enqueue_each_type_from_its_schema(
    sqlite_stack: Stack, driver: WebDriver
) -> None:
    stack = sqlite_stack
    open_page(driver, stack)
    wait_for(
        lambda: driver.find_elements(By.CSS_SELECTOR, '#typed-panel[data-ready="true"]'),
        timeout=10,
        what="the typed forms to be built",
    )
    forms = driver.find_elements(By.CSS_SELECTOR, "#typed-forms form")
    assert [f.get_attribute("data-type") for f in forms] == ["demo", "fail-after"]
    # The fields come from the schema: fail-after's form has fail_after_steps, with its bounds.
    Select(driver.find_element(By.ID, "typed-type")).select_by_value("fail-after")
    assert driver.find_element(By.ID, "typed-fail-after-num_steps").is_displayed()
    assert not driver.find_element(By.ID, "typed-demo-num_steps").is_displayed()
    field = driver.find_element(By.ID, "typed-fail-after-fail_after_steps")
    assert field.get_attribute("min") == "0"
    assert field.get_attribute("required") is not None

    # The API's refusal is shown and its field marked.
    set_input(driver, "typed-fail-after-num_steps", "0")
    set_input(driver, "typed-fail-after-fail_after_steps", "1")
    driver.find_element(By.ID, "typed-fail-after-submit").click()
    wait_for(
        lambda: "num_steps" in visible_text(driver, "typed-error"),
        timeout=10,
        what="the API's message naming num_steps",
    )
    assert driver.find_element(By.ID, "typed-fail-after-num_steps").get_attribute("aria-invalid")
    assert page_state(driver)["ids"] == []

    set_input(driver, "typed-fail-after-num_steps", "3")
    set_input(driver, "typed-fail-after-step_seconds", "0.05")
    set_input(driver, "typed-fail-after-timeout", "60")
    driver.find_element(By.ID, "typed-fail-after-submit").click()
    ids: list[str] = wait_for(lambda: page_state(driver)["ids"], timeout=10, what="the new row")
    with stack.client() as client:
        failed = wait_status(client, ids[0], {"ERROR", "SUCCESS"})
    assert (failed["workflow_name"], failed["workflow_status"]) == ("fail-after", "ERROR")
    assert (failed["num_steps"], failed["steps_completed"]) == (3, 1)
    wait_for(
        lambda: (row_state(driver, ids[0]) or {}).get("status") == "ERROR",
        timeout=10,
        what="the row to show ERROR",
    )

    # The demo, held back with run_at (a local time, sent as RFC 3339).
    Select(driver.find_element(By.ID, "typed-type")).select_by_value("demo")
    set_input(driver, "typed-demo-num_steps", "1")
    driver.execute_script(
        "const at = new Date(Date.now() + 3000); at.setMilliseconds(0);"
        "const pad = (n) => String(n).padStart(2, '0');"
        "document.getElementById('typed-demo-run-at').value = `${at.getFullYear()}-"
        "${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:"
        "${pad(at.getMinutes())}:${pad(at.getSeconds())}`;"
    )
    driver.find_element(By.ID, "typed-demo-submit").click()
    wait_for(lambda: len(page_state(driver)["ids"]) == 2, timeout=10, what="the delayed row")
    delayed = page_state(driver)["ids"][0]
    with stack.client() as client:
        assert client.get(f"/api/workflows/{delayed}").json()["workflow_status"] == "DELAYED"
        assert wait_status(client, delayed, {"SUCCESS"})["workflow_name"] == "workflow"
    assert_no_console_errors(driver, expected=("status of 422",))


def test_schedules_panel_creates_pauses_triggers_and_deletes(
    sqlite_stack: Stack, driver: WebDriver
) -> None:
    stack = sqlite_stack
    open_page(driver, stack)
    wait_for(
        lambda: driver.find_elements(By.ID, "schedule-demo-num_steps"),
        timeout=10,
        what="the schedule form's input fields",
    )
    assert driver.find_element(By.ID, "schedule-empty").is_displayed()

    # A bad cron: refused, the message and the field say so, nothing is listed.
    set_input(driver, "schedule-name", "every-2s")
    set_input(driver, "schedule-cron", "every two seconds")
    set_input(driver, "schedule-demo-num_steps", "1")
    set_input(driver, "schedule-demo-step_seconds", "0")
    driver.find_element(By.ID, "schedule-create").click()
    wait_for(
        lambda: "cron" in visible_text(driver, "schedule-error"),
        timeout=10,
        what="the API's message naming cron",
    )
    assert driver.find_element(By.ID, "schedule-cron").get_attribute("aria-invalid") == "true"
    with stack.client() as client:
        assert client.get("/api/schedules").json() == []

    set_input(driver, "schedule-cron", "*/2 * * * * *")
    driver.find_element(By.ID, "schedule-create").click()
    row = wait_for(lambda: schedule_row(driver, "every-2s"), timeout=10, what="the schedule row")
    assert (row["status"], row["pause"], row["resume"]) == ("ACTIVE", True, False)
    assert row["cron"] == "*/2 * * * * * (UTC)"
    with stack.client() as client:

        def fired() -> list[str]:
            listed = client.get("/api/workflows", params={"limit": 100}).json()
            return [w["workflow_id"] for w in listed if w["workflow_id"].endswith("-run")]

        runs = wait_for(fired, timeout=30, what="the schedule to fire")
        assert runs[0].startswith("sched-every-2s-")

    driver.find_element(
        By.CSS_SELECTOR, '#schedule-rows tr[data-name="every-2s"] [data-action="pause"]'
    ).click()
    wait_for(
        lambda: (schedule_row(driver, "every-2s") or {}).get("status") == "PAUSED",
        timeout=10,
        what="the row to show PAUSED",
    )
    with stack.client() as client:
        assert client.get("/api/schedules/every-2s").json()["status"] == "PAUSED"

    driver.find_element(
        By.CSS_SELECTOR, '#schedule-rows tr[data-name="every-2s"] [data-action="trigger"]'
    ).click()
    wait_for(
        lambda: "enqueued" in visible_text(driver, "schedule-error"),
        timeout=10,
        what="the triggered run's message",
    )
    run_id = driver.find_element(By.ID, "schedule-error").get_attribute("data-workflow-id")
    assert run_id
    assert run_id in visible_text(driver, "schedule-error")
    with stack.client() as client:
        assert wait_status(client, run_id, {"SUCCESS"})["num_steps"] == 1

    delete = '#schedule-rows tr[data-name="every-2s"] [data-action="delete"]'
    driver.find_element(By.CSS_SELECTOR, delete).click()
    assert driver.find_element(By.CSS_SELECTOR, delete).text == "Confirm delete"
    driver.find_element(By.CSS_SELECTOR, delete).click()
    wait_for(lambda: schedule_row(driver, "every-2s") is None, timeout=10, what="the row to go")
    with stack.client() as client:
        assert client.get("/api/schedules/every-2s").status_code == 404
    assert_no_console_errors(driver, expected=("status of 422",))


# ---- issue 13: the detail view and the failures view ---------------------------------------

DETAIL_JS = """
const d = document.getElementById('detail-dialog');
if (!d) return null;
return {
  open: d.open,
  title: document.getElementById('detail-title').textContent,
  status: d.dataset.status || null,
  error: document.getElementById('detail-error').textContent,
  input: document.getElementById('detail-input').textContent,
  facts: Object.fromEntries(Array.from(document.querySelectorAll('#detail-facts dd'))
    .map(dd => [dd.dataset.fact, dd.textContent])),
  steps: Array.from(document.querySelectorAll('#detail-steps tr')).map(tr => ({
    id: Number(tr.dataset.functionId), status: tr.dataset.status,
    name: tr.children[1].textContent, runs: tr.children[5].textContent,
  })),
};
"""


def detail_state(driver: WebDriver) -> dict[str, Any] | None:
    state: dict[str, Any] | None = driver.execute_script(DETAIL_JS)
    return state


def fail_after(client: httpx.Client, steps: int, fail_after_steps: int) -> str:
    body = {"num_steps": steps, "fail_after_steps": fail_after_steps, "step_seconds": 0.05}
    resp = client.post("/api/workflows/fail-after", json=body)
    assert resp.status_code == 202, resp.text
    workflow_id = str(resp.json()["workflow_id"])
    wait_status(client, workflow_id, {"ERROR"})
    return workflow_id


def test_detail_view_shows_error_input_steps_and_forks(
    sqlite_stack: Stack, driver: WebDriver
) -> None:
    stack = sqlite_stack
    with stack.client() as client:
        failed = fail_after(client, 3, 2)
        api_steps = client.get(f"/api/workflows/{failed}/steps").json()["steps"]
    open_page(driver, stack)
    wait_for(lambda: row_state(driver, failed), timeout=10, what="the failed row")
    driver.find_element(
        By.CSS_SELECTOR, f'#workflow-rows tr[data-workflow-id="{failed}"] .wf-id'
    ).click()
    state = wait_for(
        lambda: (s := detail_state(driver)) and s["open"] and s["status"] == "ERROR" and s,
        timeout=10,
        what="the detail view of the failed workflow",
    )
    assert state["title"] == failed
    assert state["error"] == "IntendedFailure: failed on purpose after 2 of 3 steps"
    assert '"fail_after_steps": 2' in state["input"]
    assert state["facts"]["Type"] == "fail-after"
    assert [s["id"] for s in state["steps"]] == [s["function_id"] for s in api_steps]
    assert {s["runs"] for s in state["steps"]} == {"1"}
    second = next(s for s in api_steps if s["name"].endswith("demo_step") and s["output"] == 1)

    driver.find_element(
        By.CSS_SELECTOR, f'#detail-steps [data-fork-step="{second["function_id"]}"]'
    ).click()
    forked = wait_for(
        lambda: (s := detail_state(driver)) and s["title"] != failed and s.get("facts") and s,
        timeout=10,
        what="the detail view to show the fork",
    )
    assert forked["facts"]["Forked from"] == failed
    with stack.client() as client:
        fork = wait_status(client, forked["title"], {"ERROR"})
    assert fork["forked_from"] == failed
    driver.find_element(By.ID, "detail-close").click()
    wait_for(lambda: not detail_state(driver)["open"], timeout=5, what="the dialog to close")  # type: ignore[index]
    assert_no_console_errors(driver)


FAILURES_JS = """
return {
  ids: Array.from(document.querySelectorAll('#dl-rows tr')).map(tr => tr.dataset.workflowId),
  status: document.getElementById('dl-status').textContent,
  confirm: !document.getElementById('dl-confirm').hidden,
};
"""


def failures_state(driver: WebDriver) -> dict[str, Any]:
    state: dict[str, Any] = driver.execute_script(FAILURES_JS)
    return state


def test_failures_view_filters_then_bulk_retries_after_a_dry_run(
    stack: Stack, driver: WebDriver
) -> None:
    with stack.client() as client:
        failed = sorted(fail_after(client, 2, 1) for _ in range(2))
        other = fail_after(client, 2, 0)
    open_page(driver, stack)
    set_input(driver, "dl-error", "after 1 of 2 steps")
    driver.find_element(By.ID, "dl-search").click()
    wait_for(
        lambda: sorted(failures_state(driver)["ids"]) == failed,
        timeout=10,
        what="the failures view to list the two matching failures",
    )
    assert other not in failures_state(driver)["ids"]
    driver.find_element(By.ID, "dl-select-all").click()
    driver.find_element(By.ID, "dl-retry-selected").click()
    wait_for(
        lambda: (
            (s := failures_state(driver))["confirm"]
            and s["status"] == "2 workflows will be retried."
        ),
        timeout=10,
        what="the dry run's count and the Confirm button",
    )
    with stack.client() as client:
        for wid in failed:  # a dry run changed nothing
            assert client.get(f"/api/workflows/{wid}-retry-1").status_code == 404
    driver.find_element(By.ID, "dl-confirm").click()
    wait_for(
        lambda: failures_state(driver)["status"] == "2 workflows retried.",
        timeout=15,
        what="the bulk retry's result",
    )
    with stack.client() as client:
        for wid in failed:
            retry = client.get(f"/api/workflows/{wid}-retry-1").json()
            assert retry["forked_from"] == wid
    # Retried ones leave the outstanding list (their retries fail again and appear instead).
    wait_for(
        lambda: not set(failed) & set(failures_state(driver)["ids"]),
        timeout=10,
        what="the retried workflows to leave the list",
    )
    assert_no_console_errors(driver)
