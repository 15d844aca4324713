"""What every console browser test shares: one headless Chromium (Debian's chromium +
chromium-driver) through Selenium WebDriver, the console's address, and `check`, which runs a
test function and prints `ok   NAME` or `FAIL NAME: why`. Each tests/console/test_*.py script
imports this, runs its checks and ends with `finish()`, which prints `passed=N failed=M` for
run.sh. Only the console's own address is ever loaded.

run.sh passes, to every script: argv[1] the console's URL, argv[2] the screenshot directory,
and in the environment VRS_NODE_BIN (the vrs-node binary), VRS_NODE_DIR (the node directory),
VRS_WORK (a scratch directory that run.sh removes).
"""

import os
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
        # The sign-out posts a form: wait for its answer (the redirect to the sign-in page)
        # before anything else. With cookies deleted, or another page asked for, before the post
        # had left, it can arrive without its session and end on a refusal page: the next check
        # once waited 10 s there for the sign-in form in a CI run on a loaded machine.
        wait.until(lambda _: d.current_url.endswith("/login") and d.find_elements(By.ID, "sign-in"))
    d.delete_all_cookies()


def unlabelled_controls():
    """Inputs and selects (not hidden) with neither a <label for> nor an aria-label."""
    return d.execute_script("""
        return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
          .filter(e => !(e.id && document.querySelector(`label[for="${e.id}"]`)) && !e.getAttribute('aria-label'))
          .map(e => e.name || e.outerHTML.slice(0, 60));
    """)




NODE_BIN = os.environ.get("VRS_NODE_BIN", "")
NODE_DIR = os.environ.get("VRS_NODE_DIR", "")
WORK = os.environ.get("VRS_WORK", "")


def finish():
    d.quit()
    failed = [n for n, why in results if why]
    print(f"passed={len(results) - len(failed)} failed={len(failed)}")
    sys.exit(1 if failed else 0)
