"""Drives the node console in headless Chromium (Debian's chromium + chromium-driver) through
Selenium WebDriver. Started by tests/console/run.sh, which builds vrs-node, makes a node with
synthetic records and accounts, and starts `vrs-node console` on 127.0.0.1.

    test_console.py URL SCREENSHOT_DIR

Prints one `ok   NAME` or `FAIL NAME: why` line per check and, last, the counts as
`passed=N failed=M` for run.sh. Only the console's own address is ever loaded.
"""

import sys
import traceback

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.support.ui import WebDriverWait
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

BASE = sys.argv[1].rstrip("/")
SHOTS = sys.argv[2]
PASSWORD = "correct horse battery staple"

results = []


def check(name):
    def wrap(fn):
        try:
            fn()
            results.append((name, None))
            print(f"ok   {name}", flush=True)
        except Exception as e:  # a failed check is reported, and the next one runs
            why = f"{type(e).__name__}: {e}".strip().splitlines()[0][:300]
            results.append((name, why))
            print(f"FAIL {name}: {why}", flush=True)
            traceback.print_exc(file=sys.stderr)
        return fn
    return wrap


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,900", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run",
              "--lang=en-US"]:
        opts.add_argument(a)
    opts.add_experimental_option("prefs", {"intl.accept_languages": "en-US,en"})
    return webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=opts)


d = browser()
d.set_page_load_timeout(30)
# While a form post navigates, an element found on the old page goes stale (or its node leaves
# the document) before the new page is there: a wait polls again rather than failing, and
# fails only when its condition never holds within 10 s.
wait = WebDriverWait(d, 10, ignored_exceptions=(WebDriverException,))


def go(path):
    d.get(BASE + path)


def h1():
    return d.find_element(By.TAG_NAME, "h1").text


def shot(name):
    height = d.execute_script("return document.documentElement.scrollHeight")
    d.set_window_size(1280, max(900, min(height + 40, 4000)))
    d.save_screenshot(f"{SHOTS}/{name}.png")
    d.set_window_size(1280, 900)


def sign_in(user, password=PASSWORD):
    go("/login")
    d.find_element(By.ID, "username").clear()
    d.find_element(By.ID, "username").send_keys(user)
    d.find_element(By.ID, "password").send_keys(password)
    d.find_element(By.ID, "sign-in").click()


def sign_out():
    buttons = d.find_elements(By.CSS_SELECTOR, "form[action='/logout'] button")
    if buttons:
        buttons[0].click()
    d.delete_all_cookies()


def unlabelled_controls():
    """Inputs and selects (not hidden) with neither a <label for> nor an aria-label."""
    return d.execute_script("""
        return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
          .filter(e => !(e.id && document.querySelector(`label[for="${e.id}"]`)) && !e.getAttribute('aria-label'))
          .map(e => e.name || e.outerHTML.slice(0, 60));
    """)


@check("sign in as admin lands on the node status")
def _():
    go("/login")
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    shot("sign-in")
    sign_in("ana")
    wait.until(lambda _: h1() == "Node status")


@check("status shows country, store counts, audit chain and audit key")
def _():
    text = d.find_element(By.TAG_NAME, "main").text
    for needle in ["IDN", "Records in the store", "500 incidents", "Last import",
                   "Audit log", "hash chain intact", "Audit key", "Federation certificate"]:
        assert needle in text, f"{needle!r} not on the status page"
    shot("status")


@check("audit log opens and its chain verifies")
def _():
    d.find_element(By.LINK_TEXT, "Audit log").click()
    wait.until(lambda _: h1() == "Audit log")
    d.find_element(By.ID, "verify").click()
    verdict = wait.until(lambda _: d.find_element(By.ID, "verdict"))
    assert "hash chain intact" in verdict.text, verdict.text
    shot("audit")


@check("budget page lists the quarters")
def _():
    go("/budget?all=1")
    assert h1() == "Privacy budget"
    assert "2024-Q4" in d.find_element(By.TAG_NAME, "main").text
    shot("budget")


@check("user admin lists the accounts, display names as text")
def _():
    go("/users")
    assert h1() == "Users"
    names = [e.text for e in d.find_elements(By.CSS_SELECTOR, "td.display-name")]
    assert "<b>Rina</b> Reviewer" in names, names
    assert not d.find_elements(By.CSS_SELECTOR, "td.display-name b"), "markup was rendered"
    shot("users")


@check("change log shows sign-ins and verifies")
def _():
    go("/changes")
    assert "signed in" in d.find_element(By.TAG_NAME, "tbody").text
    d.find_element(By.ID, "verify").click()
    verdict = wait.until(lambda _: d.find_element(By.ID, "verdict"))
    assert "change log intact" in verdict.text, verdict.text
    shot("changes")


@check("every form control has a label, on every page")
def _():
    for path in ["/", "/audit", "/budget", "/users", "/changes"]:
        go(path)
        missing = unlabelled_controls()
        assert not missing, f"{path}: {missing}"


@check("switching to Bahasa Indonesia translates the page, numbers and lang attribute")
def _():
    go("/")
    d.find_element(By.LINK_TEXT, "Bahasa Indonesia").click()
    wait.until(lambda _: h1() == "Status node")
    assert d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "id"
    text = d.find_element(By.TAG_NAME, "main").text
    assert "Catatan di penyimpanan" in text and "500 insiden" in text, text[:300]
    assert "Keluar" in d.find_element(By.TAG_NAME, "header").text
    shot("status-id")
    d.find_element(By.LINK_TEXT, "English").click()
    wait.until(lambda _: h1() == "Node status")


@check("five wrong passwords lock a second account")
def _():
    sign_out()
    for i in range(5):
        sign_in("locky", "not the password")
        err = wait.until(lambda _: d.find_element(By.ID, "sign-in-error")).text
        expected = "locked" if i == 4 else "Wrong username or password"
        assert expected in err, f"attempt {i + 1}: {err}"
    sign_in("locky", PASSWORD)
    err = wait.until(lambda _: d.find_element(By.ID, "sign-in-error")).text
    assert "locked" in err, f"the right password after the lockout: {err}"
    shot("locked")


@check("a clerk is refused user admin")
def _():
    sign_in("budi")
    wait.until(lambda _: h1() == "Node status")
    assert not d.find_elements(By.LINK_TEXT, "Users"), "a clerk sees the Users link"
    go("/users")
    assert h1() == "Not allowed", h1()
    go("/audit")
    assert h1() == "Not allowed", h1()
    go("/")
    sign_out()


@check("keyboard only: Tab reaches the sign-in button with a visible focus outline")
def _():
    d.delete_all_cookies()
    go("/login")
    wait.until(lambda _: d.find_elements(By.ID, "sign-in"))
    # Start from the top of the document without a click (a click lands on whatever is under the
    # pointer, and a link there navigates away, leaving every element found so far stale).
    d.execute_script("if (document.activeElement) { document.activeElement.blur(); } window.focus();")
    reached = None
    for _ in range(20):
        ActionChains(d).send_keys(Keys.TAB).perform()
        try:
            active = d.switch_to.active_element
            if active.get_attribute("id") == "sign-in":
                reached = active
                break
        except StaleElementReferenceException:
            assert d.current_url.endswith("/login"), f"Tab navigated away: {d.current_url}"
    assert reached is not None, "Tab never reached the sign-in button"
    style = d.execute_script(
        "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineWidth, s.outlineColor];",
        reached)
    assert style[0] not in ("none", "") and float(style[1].rstrip("px")) >= 2, style
    shot("keyboard-focus")
    # And the whole sign-in by keyboard: Shift+Tab back to the fields, type, Enter.
    ActionChains(d).key_down(Keys.SHIFT).send_keys(Keys.TAB).send_keys(Keys.TAB).key_up(Keys.SHIFT).perform()
    assert d.switch_to.active_element.get_attribute("id") == "username"
    ActionChains(d).send_keys("ana").send_keys(Keys.TAB).send_keys(PASSWORD).send_keys(Keys.ENTER).perform()
    wait.until(lambda _: h1() == "Node status")


d.quit()
failed = [n for n, why in results if why]
print(f"passed={len(results) - len(failed)} failed={len(failed)}")
sys.exit(1 if failed else 0)
