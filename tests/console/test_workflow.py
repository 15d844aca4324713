"""The console's workflow pages in headless Chromium: imports in the browser (preview with the
rejected row's line and reason, commit, cancel, bad input), the release preview (table, chart,
budget cost, compared with `vrs-node query`), and the approval queue with a real coordinator
(`vrs-coordinator query` held by the node, approved in the browser, collected with the same
query id; another denied), the audit log verified, and a clerk refused the queue.

    test_workflow.py URL SCREENSHOT_DIR

run.sh has started `vrs-node serve` for the same node directory with `[approval] mode =
"manual"` on 127.0.0.1 and written a registry for the coordinator: VRS_COORDINATOR_BIN and
VRS_REGISTRY name them. Files to upload are made here under VRS_WORK.
"""

import json
import os
import re
import subprocess
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

sys.path.insert(0, os.path.dirname(__file__))
from common import (NODE_BIN, NODE_DIR, WORK, check, d, go, h1, shot, sign_in,  # noqa: E402
                    sign_out, unlabelled_controls, wait, finish)

COORDINATOR = os.environ.get("VRS_COORDINATOR_BIN", "")
REGISTRY = os.environ.get("VRS_REGISTRY", "")


def synth_csv(path, prefix, incidents, seed, break_line=None):
    """Synthetic template CSV with source ids of their own; the row on `break_line` (the
    header is line 1) gets an impossible date."""
    raw = f"{WORK}/raw-{prefix}.csv"
    subprocess.run([NODE_BIN, "synth", "--country", "IDN", "--incidents", str(incidents),
                    "--seed", str(seed), "--out", raw], check=True, capture_output=True)
    lines = open(raw).read().splitlines()
    out = []
    for n, line in enumerate(lines, start=1):
        line = line.replace("SYN-IDN-", f"{prefix}-")
        if n == break_line:
            fields = line.split(",")
            fields[2] = "2024-13-45"
            line = ",".join(fields)
        out.append(line)
    open(path, "w").write("\n".join(out) + "\n")


def records_in_store():
    go("/imports")
    text = d.find_element(By.ID, "records").text
    return int(re.sub(r"[^0-9]", "", text))


def upload(path, mapping_file=None):
    go("/imports")
    d.find_element(By.ID, "file").send_keys(path)
    if mapping_file:
        d.find_element(By.ID, "mapping_file").send_keys(mapping_file)
    d.find_element(By.ID, "upload").click()


def count(id_):
    return int(re.sub(r"[^0-9]", "", d.find_element(By.ID, id_).text))


def coordinator(*args):
    """`vrs-coordinator query … --format json`, parsed (its exit status says whether every node
    answered, so it is not checked here)."""
    r = subprocess.run([COORDINATOR, "query", "--registry", REGISTRY, "--format", "json", *args],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip(), f"no output from vrs-coordinator: {r.stderr[-500:]}"
    return json.loads(r.stdout)


def node_outcome(doc):
    return json.dumps(doc["nodes"][0])


def post_as_form(action, csrf):
    """A POST a page could send (the session's own token), without a button for it."""
    d.execute_script("""
        const f = document.createElement('form'); f.method = 'post'; f.action = arguments[0];
        const i = document.createElement('input'); i.type = 'hidden'; i.name = 'csrf';
        i.value = arguments[1]; f.appendChild(i); document.body.appendChild(f); f.submit();
    """, action, csrf)


state = {}


@check("clerk: the import page has a labelled upload form")
def _():
    sign_in("budi")
    wait.until(lambda _: h1() == "Node status")
    d.find_element(By.LINK_TEXT, "Imports").click()
    wait.until(lambda _: h1() == "Import records")
    assert unlabelled_controls() == [], unlabelled_controls()
    state["before"] = records_in_store()
    assert state["before"] >= 500, state["before"]


@check("upload a CSV with a broken row: the preview names its line and reason")
def _():
    path = f"{WORK}/incidents-may.csv"
    synth_csv(path, "WEB-A", 6, 77, break_line=4)
    upload(path)
    wait.until(lambda _: h1() == "Import preview")
    assert count("count-rows") == 6
    assert count("count-accepted") == 5
    assert count("count-rejected") == 1
    row = d.find_element(By.CSS_SELECTOR, "#rejections tbody tr")
    cells = row.find_elements(By.TAG_NAME, "td")
    assert cells[0].text == "4", cells[0].text
    assert "date" in cells[1].text, cells[1].text
    assert d.find_element(By.ID, "file-name").text == "incidents-may.csv"
    sha = subprocess.run(["sha256sum", path], capture_output=True, text=True).stdout.split()[0]
    assert d.find_element(By.ID, "sha256").text == sha
    shot("import-preview")


@check("the preview stored nothing")
def _():
    assert records_in_store() == state["before"]
    d.find_element(By.LINK_TEXT, "incidents-may.csv").click()
    wait.until(lambda _: h1() == "Import preview")


@check("commit: the imported count goes up by the accepted rows")
def _():
    d.find_element(By.ID, "commit").click()
    wait.until(lambda _: d.find_elements(By.ID, "notice"))
    assert "5 new records" in d.find_element(By.ID, "notice").text
    shot("imports")
    assert records_in_store() == state["before"] + 5


@check("the same file again: every row is a duplicate or rejected")
def _():
    upload(f"{WORK}/incidents-may.csv")
    wait.until(lambda _: h1() == "Import preview")
    assert count("count-duplicates") == 5
    assert count("count-accepted") == 0
    d.find_element(By.ID, "cancel").click()
    wait.until(lambda _: d.find_elements(By.ID, "notice"))


@check("cancel another upload: nothing imported")
def _():
    path = f"{WORK}/incidents-june.csv"
    synth_csv(path, "WEB-B", 4, 78)
    upload(path)
    wait.until(lambda _: h1() == "Import preview")
    assert count("count-accepted") == 4
    d.find_element(By.ID, "cancel").click()
    wait.until(lambda _: d.find_elements(By.ID, "notice"))
    assert "Nothing was imported" in d.find_element(By.ID, "notice").text
    assert records_in_store() == state["before"] + 5
    assert "incidents-june.csv" not in d.find_element(By.TAG_NAME, "main").text


@check("a wrong file type and a bad mapping get clear errors, nothing stored")
def _():
    bad = f"{WORK}/notes.txt"
    open(bad, "w").write("hello\n")
    upload(bad)
    err = wait.until(lambda _: d.find_element(By.ID, "error"))
    assert "cannot be imported" in err.text, err.text
    mapping = f"{WORK}/broken.toml"
    open(mapping, "w").write("this is = = not toml\n")
    upload(f"{WORK}/incidents-june.csv", mapping)
    err = wait.until(lambda _: d.find_element(By.ID, "error"))
    assert "mapping cannot be used" in err.text, err.text
    assert records_in_store() == state["before"] + 5


CLI_QUESTION = ["--unit", "incidents", "--by", "quarter", "--from", "2024", "--to", "2024"]


@check("release preview: table, chart and budget cost, counted as `vrs-node query` counts")
def _():
    go("/preview?unit=incidents&by1=quarter&from=2024&to=2024")
    wait.until(lambda _: h1() == "Release preview")
    assert unlabelled_controls() == [], unlabelled_controls()
    assert "node's own view" in d.find_element(By.CSS_SELECTOR, "main .alert").text
    question = d.find_element(By.ID, "question").text
    assert question == "incidents by quarter, 2024-01 to 2024-12", question
    rows = d.find_elements(By.CSS_SELECTOR, "#answer tbody tr")
    keys = [r.find_elements(By.TAG_NAME, "td")[0].text for r in rows]
    assert keys == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4"], keys
    assert len(d.find_elements(By.CSS_SELECTOR, "#chart rect.bar")) == 4
    cost = d.find_element(By.ID, "cost").text
    sigma = d.find_element(By.ID, "sigma").text
    cli = subprocess.run([NODE_BIN, "query", "--dir", NODE_DIR, *CLI_QUESTION],
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"spend rho ([0-9.]+) on each of (\d+) quarter\(s\) \(([^)]*)\); sigma ([0-9.]+).*?; (\d+) cells", cli)
    assert m, cli
    rho, n, quarters, cli_sigma, cells = m.groups()
    assert f"ρ {float(rho):.6f} on each of {n} quarter(s) ({quarters}); {cells} cells" in cost, (cost, cli)
    assert f"σ {float(cli_sigma):.3f}" in sigma, (sigma, cli)
    cli_keys = [line.split()[0] for line in cli.splitlines() if line.startswith("2024-Q")]
    assert cli_keys == keys, (cli_keys, keys)
    budget = d.find_elements(By.CSS_SELECTOR, "#budget tbody tr")
    assert [r.find_element(By.TAG_NAME, "th").text for r in budget] == keys
    shot("release-preview")


@check("release preview: a bad question is an error on the form, not a failure")
def _():
    go("/preview?unit=incidents&by1=quarter&where=nonsense")
    err = wait.until(lambda _: d.find_element(By.ID, "error"))
    assert "cannot be previewed" in err.text, err.text
    assert d.find_element(By.ID, "where").get_attribute("value") == "nonsense"


@check("a clerk cannot open the approval queue nor approve")
def _():
    assert not d.find_elements(By.LINK_TEXT, "Approvals")
    go("/approvals")
    assert h1() == "Not allowed"
    go("/imports")
    csrf = d.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
    doc = coordinator("--unit", "incidents", "--by", "mode")
    state["held"] = doc["query_id"]
    assert "pending" in node_outcome(doc), node_outcome(doc)
    post_as_form(f"/approvals/{state['held']}/approve", csrf)
    wait.until(lambda _: h1() == "Not allowed")
    sign_out()


@check("reviewer: the held query in plain words, caller and cost; approve it")
def _():
    sign_in("rina")
    wait.until(lambda _: h1() == "Node status")
    assert "1 waiting" in d.find_element(By.TAG_NAME, "main").text
    d.find_element(By.LINK_TEXT, "Approvals").click()
    wait.until(lambda _: h1() == "Approval queue")
    card = d.find_element(By.ID, f"held-{state['held']}")
    text = card.text
    assert "incidents by mode" in text, text
    assert "asked by coordinator.bali-rc.vrs.test" in text, text
    assert "ρ 0.050000 on each of" in text, text
    shot("approvals")
    card.find_element(By.CSS_SELECTOR, "button.approve").click()
    wait.until(lambda _: d.find_elements(By.ID, "notice"))
    assert state["held"] in d.find_element(By.ID, "notice").text


@check("the coordinator collects the approved answer with the same query id")
def _():
    doc = coordinator("--unit", "incidents", "--by", "mode", "--query-id", state["held"])
    assert doc["coverage"]["answered"] == 1, node_outcome(doc)
    assert len(doc["cells"]) > 0
    go("/approvals")
    row = [r for r in d.find_elements(By.CSS_SELECTOR, "#decided tbody tr") if state["held"] in r.text]
    assert row and "approved and answered" in row[0].text, [r.text for r in row]
    # Charged what the queue said it would cost, and the release previews charged nothing:
    # every quarter has spent exactly this one answer's ρ.
    go("/budget?all=1")
    spent = {r.find_element(By.TAG_NAME, "th").text: r.find_elements(By.TAG_NAME, "td")[0].text
             for r in d.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert spent["2024-Q1"] == "0.050000", spent
    assert set(spent.values()) == {"0.050000"}, spent


@check("deny another: the coordinator is refused")
def _():
    doc = coordinator("--unit", "migrants", "--by", "quarter", "--from", "2024", "--to", "2024")
    held = doc["query_id"]
    go("/approvals")
    # By keyboard: the button focused and Enter pressed.
    button = d.find_element(By.ID, f"held-{held}").find_element(By.CSS_SELECTOR, "button.deny")
    d.execute_script("arguments[0].focus()", button)
    d.switch_to.active_element.send_keys(Keys.ENTER)
    wait.until(lambda _: d.find_elements(By.ID, "notice"))
    assert "Denied" in d.find_element(By.ID, "notice").text
    doc = coordinator("--unit", "migrants", "--by", "quarter", "--from", "2024", "--to", "2024",
                      "--query-id", held)
    assert doc["coverage"]["answered"] == 0
    assert "DENIED_BY_OPERATOR" in node_outcome(doc), node_outcome(doc)


@check("the audit log holds the answer and verifies; the change log has the decisions")
def _():
    go("/audit")
    assert state["held"] in d.find_element(By.TAG_NAME, "main").text
    d.find_element(By.ID, "verify").click()
    verdict = wait.until(lambda _: d.find_element(By.ID, "verdict"))
    assert "hash chain intact" in verdict.text, verdict.text
    go("/changes")
    text = d.find_element(By.TAG_NAME, "main").text
    for needle in ["import committed", "import cancelled", "query approved", "query denied",
                   "incidents-may.csv"]:
        assert needle in text, needle


@check("the workflow pages in Bahasa Indonesia")
def _():
    go("/lang/id?next=/imports")
    wait.until(lambda _: h1() == "Impor catatan")
    go("/preview?unit=incidents&by1=quarter&from=2024&to=2024")
    assert h1() == "Pratinjau rilis"
    assert "pandangan node sendiri" in d.find_element(By.CSS_SELECTOR, "main .alert").text
    question = d.find_element(By.ID, "question").text
    assert question == "incidents menurut quarter, 2024-01 sampai 2024-12", question
    shot("release-preview-id")
    go("/lang/en?next=/")


finish()
