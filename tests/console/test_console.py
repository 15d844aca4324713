"""Drives the node console in headless Chromium (Debian's chromium + chromium-driver) through
Selenium WebDriver. Started by tests/console/run.sh, which builds vrs-node, makes a node with
synthetic records and accounts, and starts `vrs-node console` on 127.0.0.1.

    test_console.py URL SCREENSHOT_DIR

Prints one `ok   NAME` or `FAIL NAME: why` line per check and, last, the counts as
`passed=N failed=M` for run.sh. Only the console's own address is ever loaded.
"""

import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.common.action_chains import ActionChains
from selenium.common.exceptions import StaleElementReferenceException

sys.path.insert(0, __import__("os").path.dirname(__file__))
from common import (PASSWORD, check, d, go, h1, shot, sign_in, sign_out,  # noqa: E402
                    unlabelled_controls, wait, finish)


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


finish()
