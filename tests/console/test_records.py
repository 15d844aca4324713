"""The ORT form and the case pages in headless Chromium (run by tests/console/run.sh, with
common.py): a clerk enters a complete case (two legs, two methods, a fee, two migrant groups,
a smuggler), sees field errors beside a wrong country code and an impossible date with nothing
saved and nothing typed lost, saves it, finds it by search, edits it, deletes it; a reviewer
restores it; a draft is saved and resumed; markup in a note is text; a clerk is refused the
reviewer's pages; the status page counts the case while it is stored and not while deleted.

    test_records.py URL SCREENSHOT_DIR

The cases it adds are deleted again at the end, so the store holds what run.sh imported.
"""

import os
import re
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.support.ui import Select

sys.path.insert(0, os.path.dirname(__file__))
from common import (check, d, go, h1, shot, sign_in,  # noqa: E402
                    unlabelled_controls, wait, finish)

SOURCE = "ORT-BR-001"
DRAFT = "ORT-DRAFT-1"
NOTE = "Intercepted at sea <script>alert('x')</script> & towed"


def stored_incidents():
    """The incidents the status page counts."""
    go("/")
    wait.until(lambda _: h1() == "Node status")
    text = d.find_element(By.TAG_NAME, "main").text
    m = re.search(r"([\d,]+) incidents", text)
    assert m, text[:300]
    return int(m.group(1).replace(",", ""))


def field(name):
    return d.find_element(By.ID, f"f-{name}")


def fill(name, value):
    e = field(name)
    e.clear()
    e.send_keys(value)


def pick(name, value):
    Select(field(name)).select_by_value(value)


def tick(id_):
    e = d.find_element(By.ID, id_)
    if not e.is_selected():
        e.click()


def press(value):
    """Clicks the form's button with this action value (a row button or save)."""
    old = d.find_element(By.TAG_NAME, "h1")
    d.find_element(By.CSS_SELECTOR, f"button[name=action][value='{value}']:not(.default-action)").click()
    wait.until(lambda _: old.id != d.find_element(By.TAG_NAME, "h1").id)


def error_of(name):
    """The message beside input `name`, or None."""
    found = d.find_elements(By.ID, f"f-{name}-error")
    if not found:
        return None
    assert field(name).get_attribute("aria-invalid") == "true", name
    return found[0].text


def value(name):
    return field(name).get_attribute("value")


PREVIEW = "/preview?unit=incidents&by1=origin&from=2024-03&to=2024-03"


def previewed_exact(origin):
    """The release preview of incidents by origin in the case's month: the exact count the
    node's store holds for `origin` (the column beside the released value), 0 without a row."""
    go(PREVIEW)
    wait.until(lambda _: d.find_elements(By.ID, "answer"))
    for row in d.find_elements(By.CSS_SELECTOR, "#answer tbody tr"):
        cells = row.find_elements(By.TAG_NAME, "td")
        if cells and cells[0].text == origin:
            return int(row.find_element(By.CSS_SELECTOR, "td.exact").text.replace(",", ""))
    return 0


def notice():
    return wait.until(lambda _: d.find_element(By.CSS_SELECTOR, "p.alert.ok")).text


state = {}


def sign_out():
    """Signs out and waits for the sign-in page, so that the next sign-in cannot race the
    sign-out's own navigation (common.sign_out does not wait)."""
    go("/")
    d.find_element(By.CSS_SELECTOR, "form[action='/logout'] button").click()
    wait.until(lambda _: d.current_url.endswith("/login") and h1() == "Sign in")
    d.delete_all_cookies()


@check("records: a clerk opens a new case from the Cases page")
def _():
    sign_in("budi")
    wait.until(lambda _: h1() == "Node status")
    state["before"] = stored_incidents()
    state["previewed"] = previewed_exact("MMR")
    d.find_element(By.LINK_TEXT, "Cases").click()
    wait.until(lambda _: h1() == "Cases")
    d.find_element(By.ID, "case-new").click()
    wait.until(lambda _: h1() == "New case")
    assert not unlabelled_controls(), unlabelled_controls()


@check("records: a complete case typed, rows added in place, a wrong country code and an impossible date shown beside their fields")
def _():
    fill("source_id", SOURCE)
    fill("period", "2024-03")
    fill("date", "2024-02-30")
    fill("agency", "POLRI")
    fill("country", "IDN")
    pick("place_type", "sea")
    pick("mode", "sea")
    fill("dead", "1")
    fill("origin", "MMR")
    fill("leg-0-to", "MYS")
    pick("leg-0-mode", "land")
    tick("f-method-guide_escort")
    tick("f-method-concealment_vessel")
    fill("fee-0-amount", "1500")
    fill("fee-0-currency", "USD")
    pick("fee-0-scope", "full_journey")
    pick("fee-0-payment", "cash")
    fill("group-0-citizenship", "MMR")
    pick("group-0-sex", "M")
    pick("group-0-age", "18-24")
    fill("group-0-count", "12")
    fill("smuggler-0-citizenship", "IDN")
    pick("smuggler-0-sex", "M")
    pick("smuggler-0-age", "35-49")
    pick("smuggler-0-role", "transporter")
    pick("smuggler-0-stage", "arrested")
    fill("note", NOTE)
    press("add-leg")
    assert value("leg-0-to") == "MYS" and value("date") == "2024-02-30", "typed values kept"
    fill("leg-1-to", "XYZ")
    pick("leg-1-mode", "sea")
    press("add-group")
    fill("group-1-citizenship", "MMR")
    pick("group-1-sex", "F")
    pick("group-1-age", "14-17")
    tick("f-group-1-unaccompanied")
    fill("group-1-count", "3")
    press("save")
    err = error_of("leg-1-to")
    assert err and "XYZ" in err and "country" in err, err
    # Every problem at once, not one per save: the impossible date too.
    err = error_of("date")
    assert err and "YYYY-MM-DD" in err, err
    summary = d.find_element(By.CSS_SELECTOR, ".error-summary").text
    assert "XYZ" in summary and "Date" in summary, summary
    # Nothing lost: every value typed is there, the wrong one too.
    for name, want in [("source_id", SOURCE), ("leg-1-to", "XYZ"), ("group-1-count", "3"),
                       ("fee-0-amount", "1500"), ("smuggler-0-citizenship", "IDN"), ("note", NOTE)]:
        assert value(name) == want, (name, value(name))
    assert d.find_element(By.ID, "f-group-1-unaccompanied").is_selected()
    assert d.find_element(By.ID, "f-method-concealment_vessel").is_selected()
    shot("case-form-error")


@check("records: the country fixed, the impossible date is still shown, and nothing saved")
def _():
    fill("leg-1-to", "IDN")
    press("save")
    err = error_of("date")
    assert err and "YYYY-MM-DD" in err, err
    assert error_of("leg-1-to") is None
    assert value("leg-1-to") == "IDN" and value("note") == NOTE
    # Looked up in a second tab, so the form with what was typed stays as it is.
    form_tab = d.current_window_handle
    d.switch_to.new_window("tab")
    go("/cases?q=" + SOURCE)
    assert not d.find_elements(By.LINK_TEXT, SOURCE), "saved despite the errors"
    d.close()
    d.switch_to.window(form_tab)


@check("records: the corrected case is saved and counted")
def _():
    fill("date", "2024-03-14")
    assert not unlabelled_controls(), unlabelled_controls()
    shot("case-form")
    press("save")
    assert SOURCE in notice()
    assert stored_incidents() == state["before"] + 1


@check("records: the saved case is counted in the release preview (its origin's exact cell)")
def _():
    assert previewed_exact("MMR") == state["previewed"] + 1, state
    assert d.find_elements(By.ID, "cost"), "the preview shows the budget cost"


@check("records: found in the list by search and by filters")
def _():
    go("/cases")

    def typed(id_, v):
        e = d.find_element(By.ID, id_)
        e.clear()
        e.send_keys(v)

    def rows():
        return [r.text for r in d.find_elements(By.CSS_SELECTOR, "#main tbody tr")]

    assert len(rows()) > 1, "the list holds the synthetic records too"
    shot("cases")
    typed("q", "BR-001")
    d.find_element(By.ID, "case-list-filter").click()
    wait.until(lambda _: "q=BR-001" in d.current_url)
    assert len(rows()) == 1 and SOURCE in rows()[0], rows()
    typed("q", "")
    typed("origin", "MMR")
    typed("from", "2024-03")
    typed("to", "2024-03")
    d.find_element(By.ID, "case-list-filter").click()
    wait.until(lambda _: "origin=MMR" in d.current_url)
    found = rows()
    assert any(SOURCE in r for r in found), found
    assert all("2024-03" in r and "MMR →" in r for r in found), found
    assert not unlabelled_controls(), unlabelled_controls()
    go("/cases?q=towed")
    assert d.find_elements(By.LINK_TEXT, SOURCE), "found by its note"
    go("/cases?destination=THA&q=" + SOURCE)
    assert not d.find_elements(By.LINK_TEXT, SOURCE), "another destination"


@check("records: a note's markup is shown as text")
def _():
    go("/cases?q=" + SOURCE)
    d.find_element(By.LINK_TEXT, SOURCE).click()
    wait.until(lambda _: h1() == "Edit case")
    assert value("note") == NOTE
    assert not d.find_elements(By.CSS_SELECTOR, "main script"), "a script element was made"
    assert d.execute_script("return typeof window.alerted") == "undefined"


@check("records: edited in place, the source id kept")
def _():
    assert field("source_id").get_attribute("readonly") is not None
    fill("group-0-count", "13")
    press("save")
    assert SOURCE in notice()
    go("/cases?q=" + SOURCE)
    row = d.find_element(By.LINK_TEXT, SOURCE).find_element(By.XPATH, "ancestor::tr").text
    assert "16" in row, row  # 13 + 3 migrants
    assert stored_incidents() == state["before"] + 1


@check("records: soft delete takes it out of the counts")
def _():
    go("/cases?q=" + SOURCE)
    d.find_element(By.LINK_TEXT, SOURCE).click()
    wait.until(lambda _: h1() == "Edit case")
    d.find_element(By.ID, "case-delete").click()
    assert "deleted" in notice()
    assert not d.find_elements(By.LINK_TEXT, SOURCE)
    assert stored_incidents() == state["before"]


@check("records: a clerk cannot see the reviewer-only pages")
def _():
    go("/cases")
    assert not d.find_elements(By.LINK_TEXT, "Deleted cases")
    assert not d.find_elements(By.LINK_TEXT, "Review queue")
    for path in ["/cases/deleted", "/cases/review"]:
        go(path)
        assert h1() == "Not allowed", (path, h1())


@check("records: a reviewer restores the deleted case and it counts again")
def _():
    sign_out()
    sign_in("rina")
    wait.until(lambda _: h1() == "Node status")
    go("/cases")
    d.find_element(By.LINK_TEXT, "Deleted cases").click()
    wait.until(lambda _: h1() == "Deleted cases")
    assert not unlabelled_controls(), unlabelled_controls()
    row = d.find_element(By.XPATH, f"//tr[th/code[text()='{SOURCE}']]")
    row.find_element(By.TAG_NAME, "button").click()
    assert "restored" in notice()
    assert stored_incidents() == state["before"] + 1
    go("/cases/review")
    assert h1() == "Review queue"
    assert not unlabelled_controls(), unlabelled_controls()
    sign_out()


@check("records: a draft is saved (invalid is fine), resumed and finished")
def _():
    sign_in("budi")
    wait.until(lambda _: h1() == "Node status")
    go("/cases/new")
    fill("source_id", DRAFT)
    fill("period", "2024-0")
    fill("note", "half done")
    press("draft")
    assert "Draft saved" in notice()
    go("/cases")
    d.find_element(By.LINK_TEXT, DRAFT).click()
    wait.until(lambda _: h1() == "New case")
    assert value("period") == "2024-0" and value("note") == "half done"
    fill("period", "2024-04")
    fill("country", "IDN")
    fill("group-0-citizenship", "AFG")
    fill("group-0-count", "2")
    # Enter in a text box saves (the form's first button is Save, not a row button).
    field("group-0-count").send_keys(Keys.ENTER)
    assert DRAFT in notice()
    assert d.find_elements(By.LINK_TEXT, DRAFT), "stored"
    assert not d.find_elements(By.CSS_SELECTOR, "a[href^='/cases/new?draft=']"), "the draft is gone"
    assert stored_incidents() == state["before"] + 2


@check("records: the row buttons are reached by Tab with a visible focus outline")
def _():
    go("/cases/new")
    wait.until(lambda _: h1() == "New case")
    field("origin").click()
    reached = None
    for _ in range(15):
        ActionChains(d).send_keys(Keys.TAB).perform()
        active = d.switch_to.active_element
        if active.get_attribute("value") == "add-leg":
            reached = active
            break
    assert reached is not None, "Tab never reached 'Add a leg'"
    style = d.execute_script(
        "const s = getComputedStyle(arguments[0]); return [s.outlineStyle, s.outlineWidth];", reached)
    assert style[0] not in ("none", "") and float(style[1].rstrip("px")) >= 2, style
    # Space on the focused button adds the leg, like a click.
    ActionChains(d).send_keys(Keys.SPACE).perform()
    wait.until(lambda _: d.find_elements(By.ID, "f-leg-1-to"))


@check("records: the form in Bahasa Indonesia")
def _():
    go("/cases/new")
    d.find_element(By.LINK_TEXT, "Bahasa Indonesia").click()
    wait.until(lambda _: h1() == "Kasus baru")
    text = d.find_element(By.TAG_NAME, "main").text
    assert "Kelompok migran" in text and "Penyelundup" in text, text[:300]
    shot("case-form-id")
    d.find_element(By.LINK_TEXT, "English").click()
    wait.until(lambda _: h1() == "New case")


@check("records: the cases added are deleted again (the store as run.sh made it)")
def _():
    for source in [SOURCE, DRAFT]:
        go("/cases/edit?source=" + source)
        wait.until(lambda _: h1() == "Edit case")
        d.find_element(By.ID, "case-delete").click()
        notice()
    assert stored_incidents() == state["before"]
    sign_out()


finish()
