#!/usr/bin/env python3
"""Browser test of the dlq dashboard: headless Chromium (Selenium + Debian's chromium-driver) against a running
`dlq serve` on a seeded store, plus /metrics parsed by prometheus_client.

  dashboard_test.py seed FILE.jsonl      write the seed letters (stored format v1, JSON Lines)
  dashboard_test.py add-commands         print the seed as `dlq add` argument lists (one JSON array a line)
  dashboard_test.py run BASE_URL TOKEN SCREENSHOT_DIR

Run by scripts/browser-test, which builds dlq, seeds a temporary store, starts the server and stops it.
"""

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
import uuid

# How scripts/browser-test seeded the store: "import" (times spread over a day) or "add" (all failing now).
IMPORTED = os.environ.get("DLQ_BROWSER_SEED", "import") == "import"
SCRIPT_PAYLOAD = "<script>window.pwned = 1; document.title = 'pwned'</script>"


def seed_letters():
    """14 letters: 5 orders/validation, 4 payments/timeout, 2 emails/dependency, 2 webhooks/rateLimited and
    one orders/decoding letter whose payload is a <script>."""
    now = time.time()
    specs = []
    for i in range(5):
        specs.append(dict(source="orders", reason="validation", errorType="DecodingError",
                          errorMessage=f"keyNotFound: total (order {1040 + i})", attempts=1,
                          metadata={"tenant": "acme", "region": "eu-west-1"}, contentType="application/json",
                          payload=json.dumps({"order": 1040 + i, "items": [{"sku": "A-1", "qty": 2}],
                                              "currency": "EUR"}), age=(30 - i * 5) * 3600))
    for i in range(4):
        specs.append(dict(source="payments", reason="timeout", errorType="TimeoutError",
                          errorMessage="upstream timed out after 30s", attempts=3,
                          metadata={"provider": "stripe"}, contentType="application/json",
                          payload=json.dumps({"payment": f"pay_{i}", "amount": 1999 + i}), age=(4 - i) * 3000,
                          causes=["connect timeout: api.payments.example:443"]))
    for i in range(2):
        specs.append(dict(source="emails", reason="dependency", errorType="SMTPError",
                          errorMessage="550 mailbox unavailable", attempts=5, metadata={},
                          contentType="text/plain", payload=f"To: user{i}@example.com\nSubject: Receipt",
                          age=8 * 3600 + i * 60))
    for i in range(2):
        specs.append(dict(source="webhooks", reason="rateLimited", errorType="HTTPError",
                          errorMessage="429 Too Many Requests", attempts=2, metadata={"endpoint": "/hooks/orders"},
                          contentType="application/json", payload=json.dumps({"event": "order.created", "n": i}),
                          age=20 * 60 + i))
    specs.append(dict(source="orders", reason="decoding", errorType="HTMLError",
                      errorMessage="unexpected <b>markup</b> in body", attempts=1,
                      metadata={"tenant": "<img src=x onerror=alert(1)>"}, contentType="text/html",
                      payload=SCRIPT_PAYLOAD, age=90))
    return specs, now


def iso(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%03dZ" % int((ts % 1) * 1000)


def uuid7(ts, n):
    ms = int(ts * 1000)
    rand = uuid.uuid4().int & ((1 << 74) - 1)
    value = (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    return str(uuid.UUID(int=value))


def write_seed(path):
    specs, now = seed_letters()
    lines = []
    for n, spec in enumerate(sorted(specs, key=lambda s: -s["age"])):
        failed = now - spec["age"]
        letter = {
            "v": 1, "id": uuid7(failed, n), "source": spec["source"], "reason": spec["reason"],
            "errorType": spec["errorType"], "errorMessage": spec["errorMessage"],
            "causes": spec.get("causes", []), "attempts": spec["attempts"], "firstFailedAt": iso(failed),
            "lastFailedAt": iso(failed), "nextAttemptAt": None, "expiresAt": iso(now + 7 * 86400),
            "status": "dead", "replayCount": 0, "metadata": spec["metadata"],
            "contentType": spec["contentType"],
            "payload": base64.b64encode(spec["payload"].encode()).decode(),
        }
        lines.append(json.dumps(letter))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def add_commands():
    specs, _ = seed_letters()
    for spec in sorted(specs, key=lambda s: -s["age"]):
        args = ["add", "--source", spec["source"], "--reason", spec["reason"], "--error-type", spec["errorType"],
                "--error-message", spec["errorMessage"], "--attempts", str(spec["attempts"]),
                "--content-type", spec["contentType"], "--payload", spec["payload"]]
        for key, value in spec["metadata"].items():
            args += ["--metadata", f"{key}={value}"]
        print(json.dumps(args))


# ---- the test ------------------------------------------------------------------------------------------------

class Checks:
    def __init__(self):
        self.failures = []
        self.passed = 0

    def expect(self, condition, what):
        if condition:
            self.passed += 1
            print(f"  ok    {what}")
        else:
            self.failures.append(what)
            print(f"  FAIL  {what}")


def http(base, path, token=None, method="GET", body=None):
    request = urllib.request.Request(base + path, method=method, data=body)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def check_metrics(base, token, checks, expected_by_source):
    from prometheus_client.parser import text_string_to_metric_families

    status, text = http(base, "/metrics", token)
    checks.expect(status == 200, "/metrics answers 200 with the token")
    families = {family.name: family for family in text_string_to_metric_families(text)}
    depth = {s.labels.get("source"): s.value for s in families["dlq_depth"].samples} if "dlq_depth" in families else {}
    checks.expect(depth == {k: float(v) for k, v in expected_by_source.items()},
                  f"prometheus_client parses dlq_depth per source: {depth}")
    oldest = families.get("dlq_oldest_age_seconds")
    ages = {s.labels.get("source"): s.value for s in oldest.samples} if oldest else {}
    oldest_orders = 24 * 3600 if IMPORTED else 0
    checks.expect(set(ages) == set(expected_by_source) and ages.get("orders", -1) >= oldest_orders,
                  f"dlq_oldest_age_seconds per source, orders at least {oldest_orders}s old: {ages}")
    checks.expect(http(base, "/metrics")[0] == 401, "/metrics without the token is 401")


def run(base, token, shots):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from selenium.webdriver.support.ui import Select

    os.makedirs(shots, exist_ok=True)
    checks = Checks()
    specs, _ = seed_letters()
    by_source = {}
    for spec in specs:
        by_source[spec["source"]] = by_source.get(spec["source"], 0) + 1

    print("API and /metrics")
    checks.expect(http(base, "/healthz")[0] == 200, "/healthz answers without a token")
    status, body = http(base, "/api/v1/stats", token)
    stats = json.loads(body)
    checks.expect(status == 200 and stats["total"] == len(specs), f"/api/v1/stats total is {len(specs)}")
    check_metrics(base, token, checks, by_source)
    status, body = http(base, "/api/v1/dead-letters?source=orders&reason=decoding", token)
    hostile_id = json.loads(body)["items"][0]["id"]

    options = Options()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1000", "--force-device-scale-factor=1", "--lang=en-US"]:
        options.add_argument(argument)
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)

    def shot(name, width=1280, max_height=2400):
        driver.set_window_size(width, 1000)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, max(800, min(height + 40, max_height)))
        driver.save_screenshot(os.path.join(shots, f"{name}.png"))
        driver.set_window_size(1280, 1000)

    def layout_problems():
        """How many pixels the page is wider than the window, and the elements that stick out of the window or
        out of their panel (a panel of the overview's grid clips what sticks out)."""
        return driver.execute_script("""
            const width = document.documentElement.clientWidth;
            const name = e => e.tagName + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '');
            const out = [];
            for (const e of document.querySelectorAll('body *')) {
                if (e.closest('pre, details:not([open]) > :not(summary)')) continue;
                const box = e.getBoundingClientRect();
                if (box.width === 0 && box.height === 0) continue;
                if (box.right > width + 1) { out.push('window: ' + name(e)); continue; }
                const panel = e.parentElement && e.parentElement.closest('.panel');
                if (panel && box.right > panel.getBoundingClientRect().right + 1) out.push('panel: ' + name(e));
            }
            return [document.documentElement.scrollWidth - width, out.slice(0, 8)];""")

    def text(selector):
        return driver.find_element(By.CSS_SELECTOR, selector).text.strip()

    def click_and_load(element):
        """Clicks an element that navigates and waits until the browser has loaded the next page: click()
        returns once the click is dispatched, before the navigation it starts. The old page is marked and the
        wait ends on a complete document without the mark. (Selenium's staleness_of raced chromedriver: while
        the old document was being torn down it answered "Node with given id does not belong to the document",
        seen once in CI; a script that fails during the navigation just means "not yet".)"""
        driver.execute_script("window.__dlqOldPage = true")
        element.click()

        def loaded(d):
            try:
                return d.execute_script(
                    "return window.__dlqOldPage !== true && document.readyState === 'complete'")
            except WebDriverException:
                return False

        WebDriverWait(driver, 30).until(loaded)

    def submit(element_id):
        click_and_load(driver.find_element(By.ID, element_id))

    try:
        print("sign-in")
        driver.get(base + "/")
        checks.expect("/signin" in driver.current_url, "the dashboard sends a new visitor to the sign-in page")
        shot("01-signin")
        driver.find_element(By.ID, "token").send_keys("wrong-token")
        submit("signin")
        checks.expect(text("#signin-error") == "That token is not right.", "a wrong token is refused")
        driver.find_element(By.ID, "token").send_keys(token)
        submit("signin")
        cookie = driver.get_cookie("dlq_session") or {}
        checks.expect(cookie.get("httpOnly") is True and cookie.get("sameSite") == "Strict",
                      f"the session cookie is HttpOnly and SameSite=Strict: {cookie.get('sameSite')}")

        print("overview")
        checks.expect(driver.title.startswith("Overview"), f"signed in, the overview opens: {driver.title}")
        checks.expect(text("#total") == str(len(specs)), f"the summary shows {len(specs)} letters")
        checks.expect(text("#count-dead") == str(len(specs)), "all of them dead")
        rows = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
                for r in driver.find_elements(By.CSS_SELECTOR, "#by-source tbody tr")}
        checks.expect(rows == {k: str(v) for k, v in by_source.items()}, f"counts by source: {rows}")
        reasons = {r.find_elements(By.TAG_NAME, "td")[0].text: r.find_elements(By.TAG_NAME, "td")[1].text
                   for r in driver.find_elements(By.CSS_SELECTOR, "#by-reason tbody tr")}
        checks.expect(reasons.get("validation") == "5" and reasons.get("timeout") == "4", f"counts by reason: {reasons}")
        if IMPORTED:
            checks.expect(text("#oldest-age").startswith("1d"), f"the oldest is a day old: {text('#oldest-age')}")
        shot("02-overview")

        print("list and detail")
        driver.get(base + "/letters")
        checks.expect(text("#matching") == str(len(specs)), "the list counts every letter")
        shot("03-letters")
        driver.get(base + f"/letters/{hostile_id}")
        checks.expect(text("#letter-id") == hostile_id, "a letter's detail opens")
        checks.expect(text("#payload") == SCRIPT_PAYLOAD, "the <script> payload shows as text")
        checks.expect(driver.title.startswith("Letter "), f"the payload's script did not run (title: {driver.title})")
        checks.expect(driver.execute_script("return typeof window.pwned") == "undefined", "window.pwned is not set")
        checks.expect(driver.execute_script("return document.querySelectorAll('img').length") == 0,
                      "no img element made it into the page")
        checks.expect(driver.execute_script(
            "return [...document.scripts].map(s => s.nonce.length > 0 && !s.src).join()") == "true",
                      "one script, the page's own (by its nonce): none from the payload")
        checks.expect(text("#error-message") == "unexpected <b>markup</b> in body", "markup in the error is text")
        copy = driver.find_element(By.ID, "copy-fingerprint")
        checks.expect(copy.is_displayed(), "the fingerprint has a copy button (shown by the page's script)")
        copy.click()
        WebDriverWait(driver, 5).until(lambda d: copy.text != "Copy")
        checks.expect(copy.text in ("Copied", "Selected: copy it", "Select and copy"), f"the copy button answers: {copy.text}")
        shot("04-letter-script-payload")
        orders_id = json.loads(http(base, "/api/v1/dead-letters?source=orders&limit=1", token)[1])["items"][0]["id"]
        driver.get(base + f"/letters/{orders_id}")
        checks.expect('"order": 1040' in text("#payload"), "a JSON payload is pretty-printed")
        checks.expect("tenant" in text("#metadata"), "metadata is listed")
        shot("05-letter-json")

        print("search, metadata and sort")
        driver.get(base + "/letters")
        driver.find_element(By.ID, "search").send_keys("PAY_2")
        click_and_load(driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]"))
        checks.expect(text("#matching") == "1", f"a search finds a payload's text, ignoring case: {text('#matching')}")
        checks.expect(driver.find_element(By.ID, "search").get_attribute("value") == "PAY_2", "the search is kept")
        driver.get(base + "/letters")
        driver.find_element(By.ID, "search").send_keys("eu-west")
        driver.find_element(By.ID, "meta").send_keys("tenant=acme")
        Select(driver.find_element(By.ID, "sort")).select_by_value("first-failed")
        click_and_load(driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]"))
        checks.expect(text("#matching") == "5", f"search in metadata values and a metadata pair: {text('#matching')}")
        checks.expect(driver.find_element(By.ID, "meta").get_attribute("value") == "tenant=acme",
                      "the metadata pair is kept in its field")
        checks.expect(Select(driver.find_element(By.ID, "sort")).first_selected_option.get_attribute("value")
                      == "first-failed", "the order is kept")
        driver.get(base + "/letters")
        driver.find_element(By.ID, "meta").send_keys("provider=stripe")
        click_and_load(driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]"))
        checks.expect(text("#matching") == "4", f"a metadata pair alone: {text('#matching')}")
        driver.get(base + "/letters?sort=attempts")
        source = driver.page_source
        checks.expect(-1 < source.find("550 mailbox unavailable") < source.find("keyNotFound"),
                      "sorted by attempts, the emails letters (5 attempts) come before the orders letters (1)")
        shot("05b-letters-search")

        print("groups")
        driver.get(base + "/groups")
        counts = [r.find_elements(By.TAG_NAME, "td")[0].text for r in driver.find_elements(By.CSS_SELECTOR, "#groups tbody tr")]
        checks.expect(counts[:2] == ["5", "4"], f"groups by fingerprint, largest first: {counts}")
        shot("06-groups")

        print("redrive through the confirmation")
        driver.get(base + "/letters?source=payments")
        submit("redrive-matching")
        checks.expect(text("#question") == "Redrive 4 letters?", f"the confirmation asks first: {text('#question')}")
        after_confirm_page = json.loads(http(base, "/api/v1/stats", token)[1])["byStatus"]
        checks.expect(after_confirm_page.get("retrying", 0) == 0, "nothing changed before confirming")
        warning = "No running service handles payments: these letters will wait until one starts."
        checks.expect(text("#warning") == warning, f"the confirmation warns before confirming: {text('#warning')}")
        shot("07-confirm-redrive")
        submit("confirm")
        checks.expect("/operations/" in driver.current_url, f"the redrive lands on its operation: {driver.current_url}")
        checks.expect(text("#notice").startswith("Redriven: 4 letters"), f"the result is shown: {text('#notice')}")
        checks.expect(text("#operation-kind") == "redrive" and text("#operation-state") == "running",
                      f"a running redrive: {text('#operation-kind')} {text('#operation-state')}")
        checks.expect(text("#count-pending") == "4", f"4 letters pending: {text('#count-pending')}")
        checks.expect(text("#warning") == warning, "the operation's page says the letters wait")
        checks.expect(len(driver.find_elements(By.ID, "cancel-operation")) == 1, "a running redrive can be cancelled")
        stats = json.loads(http(base, "/api/v1/stats", token)[1])
        checks.expect(stats["byStatus"].get("retrying") == 4, f"4 letters are now retrying: {stats['byStatus']}")
        operation_url = driver.current_url.split("?")[0]
        shot("08-after-redrive")

        print("operations")
        status, body = http(base, "/api/v1/operations", token)
        operations = json.loads(body) if status == 200 else []
        checks.expect(status == 200 and operations and operations[0]["kind"] == "redrive"
                      and operations[0]["counts"]["pending"] == 4 and operations[0]["actor"] == "admin",
                      f"GET /api/v1/operations lists the redrive, 4 pending, by admin: {body[:300]}")
        driver.get(base + "/operations")
        rows = driver.find_elements(By.CSS_SELECTOR, "#operations tbody tr")
        first = rows[0].text if rows else ""
        checks.expect("redrive" in first and "running" in first and "0 of 4" in first,
                      f"the Operations page shows the redrive running, 0 of 4 done: {first!r}")
        shot("08b-operations")
        for name, url in [("the Operations page", base + "/operations"), ("an operation's page", operation_url)]:
            driver.set_window_size(400, 1000)
            driver.get(url)
            overflow, wide = driver.execute_script("""
                const width = document.documentElement.clientWidth;
                const wide = [...document.querySelectorAll('body *')]
                    .filter(e => e.getBoundingClientRect().right > width + 1)
                    .map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 8);
                return [document.documentElement.scrollWidth - width, wide];""")
            checks.expect(overflow <= 0, f"{name} fits a 400 px phone: {overflow} px too wide: {wide}")
        driver.set_window_size(1280, 1000)

        print("a letter's life: park, edit, the timeline")
        driver.get(base + f"/letters/{orders_id}")
        click_and_load(driver.find_element(By.ID, "park-letter"))
        checks.expect(text("#question") == "Park 1 letter?", f"parking asks first: {text('#question')}")
        submit("confirm")
        letter = json.loads(http(base, f"/api/v1/dead-letters/{orders_id}", token)[1])
        checks.expect(letter["status"] == "parked", f"the letter is parked: {letter['status']}")
        checks.expect(letter["history"][0]["event"] == "failed" and letter["history"][-1]["event"] == "parked"
                      and letter["history"][-1].get("actor") == "admin",
                      f"its history: the first failure, then parked by admin: {letter['history']}")
        driver.get(base + f"/letters/{orders_id}")
        events = [e.get_attribute("class") for e in driver.find_elements(By.CSS_SELECTOR, "#history li.entry")]
        checks.expect(events == ["entry failed", "entry parked"], f"the timeline shows both: {events}")
        checks.expect("by admin" in text("#history"), "the timeline names who parked it")
        checks.expect(text("#redrive-letter") == "Unpark and redrive…", "a parked letter offers to unpark")
        driver.find_element(By.CSS_SELECTOR, "#edit-payload summary").click()
        editor = driver.find_element(By.CSS_SELECTOR, "#edit-payload textarea")
        editor.clear()
        editor.send_keys('{"order": 1040, "total": 12.5}')
        submit("save-payload")
        letter = json.loads(http(base, f"/api/v1/dead-letters/{orders_id}", token)[1])
        payload = base64.b64decode(letter["payload"]).decode()
        checks.expect(payload == '{"order": 1040, "total": 12.5}', f"the edited payload is stored: {payload}")
        checks.expect(letter["history"][-1]["event"] == "edited"
                      and "SHA-256" in letter["history"][-1].get("message", ""),
                      f"the edit is in the history with the old payload's digest: {letter['history'][-1]}")
        shot("09-letter-timeline")
        driver.set_window_size(400, 1000)
        driver.get(base + f"/letters/{orders_id}")
        overflow, wide = driver.execute_script("""
            const width = document.documentElement.clientWidth;
            const wide = [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > width + 1)
                .map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 8);
            return [document.documentElement.scrollWidth - width, wide];""")
        checks.expect(overflow <= 0, f"the letter page fits a 400 px phone: {overflow} px too wide: {wide}")
        driver.set_window_size(1280, 1000)
        print("a bad filter, an unknown page, the instances")
        driver.get(base + "/letters?source=orders&since=bogus")
        checks.expect("must be" in text("#since-error"), f"a bad 'since' is said beside its field: {text('#since-error')}")
        checks.expect(driver.find_element(By.ID, "since").get_attribute("value") == "bogus",
                      "the form keeps what was typed")
        shot("10-bad-filter")
        driver.get(base + "/no/such/page")
        checks.expect(driver.find_element(By.TAG_NAME, "h1").text == "404 Not Found",
                      "an unknown path is an HTML page for a browser")
        checks.expect("no such path" in text("#error-message"), "it says what was not found")
        driver.get(base + "/instances")
        checks.expect(len(driver.find_elements(By.ID, "no-instances")) == 1,
                      "the Instances page says no service runs (only dlq serve does)")
        checks.expect(driver.find_element(By.CSS_SELECTOR, "header nav a.on").text == "Instances",
                      "the Instances page is in the navigation")

        print("paging and page size")
        driver.get(base + "/letters?size=5")
        checks.expect(text("#range") == f"1–5 of {len(specs)}", f"the list says which letters it shows: {text('#range')}")
        submit("next-page")
        checks.expect(text("#range") == f"6–10 of {len(specs)}", f"the next page goes on: {text('#range')}")
        checks.expect(len(driver.find_elements(By.CSS_SELECTOR, "#letters tbody tr")) == 5, "5 letters a page")

        print("selection and the per-row menu")
        driver.get(base + "/letters?source=webhooks")
        boxes = driver.find_elements(By.CSS_SELECTOR, "#letters tbody input[type=checkbox]")
        checks.expect(len(boxes) == 2, f"a checkbox per row: {len(boxes)}")
        for box in boxes:
            box.click()
        submit("park-selected")
        checks.expect(text("#question") == "Park 2 letters?", f"the ticked letters go to the confirmation: {text('#question')}")
        shot("11-confirm-selection")
        submit("confirm")
        checks.expect("source=webhooks" in driver.current_url and text("#notice").startswith("Parked: 2 letters"),
                      f"back on the filtered view with the result: {driver.current_url}")
        stats = json.loads(http(base, "/api/v1/stats?source=webhooks", token)[1])
        checks.expect(stats["byStatus"].get("parked") == 2, f"both are parked: {stats['byStatus']}")
        operations = json.loads(http(base, "/api/v1/operations?limit=1", token)[1])
        checks.expect(operations and operations[0]["kind"] == "park" and len(operations[0]["filter"].get("ids", [])) == 2,
                      f"recorded as a park of the 2 ids: {operations[:1]}")
        menu = driver.find_element(By.CSS_SELECTOR, "#letters tbody tr details.rowmenu")
        menu.find_element(By.TAG_NAME, "summary").click()
        click_and_load(menu.find_element(By.CSS_SELECTOR, "a.redrive-row"))
        checks.expect(text("#question") == "Redrive 1 letter?", f"a row's menu opens its confirmation: {text('#question')}")
        driver.get(base + "/letters?source=orders")
        click_and_load(driver.find_element(By.ID, "select-all"))
        checks.expect("All" in text("#selection-note") and "are selected" in text("#selection-note"),
                      f"select all matching: {text('#selection-note')}")
        submit("redrive-selected")
        checks.expect(text("#question").startswith("Redrive ") and "letters?" in text("#question"),
                      f"the whole filter goes to the confirmation: {text('#question')}")

        print("a sign-in that ended")
        driver.delete_cookie("dlq_session")
        driver.add_cookie({"name": "dlq_session", "value": "0" * 64, "path": "/"})
        driver.get(base + "/letters?source=emails")
        checks.expect("/signin" in driver.current_url and "Your sign-in has ended" in text("#alert"),
                      f"an unknown session goes back to sign-in with a notice: {driver.current_url}")
        driver.find_element(By.ID, "token").send_keys(token)
        submit("signin")
        checks.expect(driver.current_url.endswith("/letters?source=emails"),
                      f"signed in again, back where it was: {driver.current_url}")

        print("every page from 360 to 1,920 px")
        group_fp = json.loads(http(base, "/api/v1/groups?limit=1", token)[1])[0]["fingerprint"]
        pages = [("overview", "/"), ("letters", "/letters"), ("letter", f"/letters/{hostile_id}"),
                 ("letter-json", f"/letters/{orders_id}"), ("groups", "/groups"), ("operations", "/operations"),
                 ("operation", operation_url.replace(base, "")), ("instances", "/instances"),
                 ("confirm", f"/confirm?action=redrive&fingerprint={group_fp}"), ("sign-in", "/signin"),
                 ("error", "/no/such/page"), ("bad filter", "/letters?since=bogus")]
        for width in [360, 768, 1400, 1920]:
            driver.set_window_size(width, 1000)
            for name, path in pages:
                driver.get(base + path)
                overflow, wide = layout_problems()
                checks.expect(overflow <= 0 and not wide,
                              f"{name} at {width} px: {overflow} px too wide, sticking out: {wide}")
            if width == 360:
                driver.get(base + "/groups")
                split = driver.execute_script("""
                    // Words (up to 30 characters) of the groups table drawn on two lines: broken mid-word.
                    const out = [];
                    const walker = document.createTreeWalker(document.querySelector('#groups'), NodeFilter.SHOW_TEXT);
                    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                        const re = /\\S+/g; let m;
                        while ((m = re.exec(node.textContent))) {
                            if (m[0].length > 30) continue;
                            const range = document.createRange();
                            range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
                            const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                            if (lines.size > 1) out.push(m[0]);
                        }
                    }
                    return out.slice(0, 8);""")
                checks.expect(not split, f"the Groups page breaks no word mid-word on a phone: {split}")
                driver.get(base + "/letters")
                display = driver.execute_script(
                    "return getComputedStyle(document.querySelector('#letters thead')).display")
                checks.expect(display == "none", "on a phone the letter list is cards (no table header)")
        driver.set_window_size(1280, 1000)
        driver.get(base + "/")
        shot("02-overview-after")
        # The README's phone picture (docs/dashboard-phone.png): the list as cards, below the filter form.
        driver.set_window_size(390, 1000)
        driver.get(base + "/letters?source=orders&size=25")
        driver.execute_script("document.querySelector('#selection').scrollIntoView()")
        driver.save_screenshot(os.path.join(shots, "12-letters-phone.png"))
        driver.set_window_size(1280, 1000)
        driver.get(base + "/groups")
        shot("13-groups-phone", width=390)
        driver.get(base + "/letters?source=orders&source=payments&since=bogus")
        shot("14-filters-phone", width=390, max_height=1000)

        print("live: the overview refreshes itself, and its chart")
        driver.get(base + "/")
        checks.expect(len(driver.find_elements(By.CSS_SELECTOR, "#timeline rect.tl-bar")) > 0,
                      "the overview draws failures per hour")
        before = int(text("#total"))
        status, _ = http(base, f"/api/v1/dead-letters/{orders_id}", token, method="DELETE")
        checks.expect(status == 200, f"a letter deleted through the API: {status}")
        try:
            WebDriverWait(driver, 15).until(lambda d: text("#total") == str(before - 1))
            refreshed = True
        except Exception:
            refreshed = False
        checks.expect(refreshed, f"the overview shows the new total within 15 s without a reload: {text('#total')}")
        checks.expect(driver.execute_script("return window.performance.getEntriesByType('navigation').length") == 1,
                      "by refreshing its parts, not by reloading the page")
        checks.expect(driver.execute_script("return typeof window.pwned") == "undefined", "no payload ran meanwhile")
    except Exception as error:  # a missing element or a timeout: record it, keep the page for the artifacts
        checks.expect(False, f"the browser steps ran to the end ({type(error).__name__}: {str(error).splitlines()[0]})")
        driver.save_screenshot(os.path.join(shots, "99-failure.png"))
        with open(os.path.join(shots, "99-failure.html"), "w") as f:
            f.write(driver.page_source)
    finally:
        driver.quit()

    print(f"\n{checks.passed} checks passed, {len(checks.failures)} failed")
    for failure in checks.failures:
        print(f"  failed: {failure}")
    return 1 if checks.failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "seed":
        write_seed(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "add-commands":
        add_commands()
    elif len(sys.argv) == 5 and sys.argv[1] == "run":
        sys.exit(run(sys.argv[2], sys.argv[3], sys.argv[4]))
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
