"""Headless Chromium (Debian's package) driven by chromedriver through Selenium, for the UI system test."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: Flags for a machine without network access: without the background-networking ones Chromium floods
#: refused connections (component updates, sync, field trials...).
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--window-size=1600,1000",
)


@contextmanager
def chromium_driver(binary: str, driver: str) -> Iterator[Any]:
    """A Selenium WebDriver on headless Chromium with a throw-away profile; quit on exit.

    :param binary: path of the Chromium binary.
    :param driver: path of chromedriver.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="bria-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        browser = webdriver.Chrome(service=Service(driver), options=options)
        browser.set_page_load_timeout(60)
        try:
            yield browser
        finally:
            browser.quit()


def screenshot(browser: Any, folder: Path, name: str) -> Path:
    """Save a screenshot of the window as ``folder/name`` and check it is not blank.

    :param browser: the WebDriver.
    :param folder: where to save it.
    :param name: the file name.
    """
    path = folder / name
    assert browser.save_screenshot(str(path)), f"screenshot {name} failed"
    assert path.stat().st_size > 10_000, f"{name} looks empty"
    return path


def login(browser: Any, base_url: str, username: str, password: str, *, timeout: float = 60) -> None:
    """Log in through SimpleAuthManager's login form.

    :param browser: the WebDriver.
    :param base_url: Airflow's URL.
    :param username: user.
    :param password: password.
    :param timeout: seconds to wait for the form and the redirect.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{base_url}/")
    wait = WebDriverWait(browser, timeout)
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "input[name=username]")))
    assert "/auth/login" in browser.current_url, browser.current_url
    browser.find_element(By.CSS_SELECTOR, "input[name=username]").send_keys(username)
    browser.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait.until(lambda b: "/auth/login" not in b.current_url)


def task_table_states(browser: Any, *, expected_rows: int, timeout: float = 60) -> dict[str, str]:
    """Read ``{task_id: state}`` from the "Task Instances" table of a DAG run page.

    :param browser: the WebDriver, on the run page.
    :param expected_rows: wait until this many rows have a task name and a state.
    :param timeout: seconds.
    """
    from selenium.webdriver.common.by import By

    def read(b: Any) -> dict[str, str] | None:
        found: dict[str, str] = {}
        for row in b.find_elements(By.CSS_SELECTOR, "tr"):
            names = row.find_elements(By.CSS_SELECTOR, "td[data-testid=table-cell-task_display_name]")
            states = row.find_elements(By.CSS_SELECTOR, "td[data-testid=table-cell-state]")
            if names and states and names[0].text.strip() and states[0].text.strip():
                found[names[0].text.strip()] = states[0].text.strip().lower()
        return found if len(found) >= expected_rows else None

    return _wait(browser, timeout).until(read)


def extra_link_href(browser: Any, name: str, *, timeout: float = 60) -> str:
    """Wait for the extra-link button ``name`` on a task instance's Details tab; return its ``href``.

    :param browser: the WebDriver, on the task instance details page.
    :param name: the link's name (button text).
    :param timeout: seconds.
    """
    from selenium.webdriver.common.by import By

    def find(b: Any) -> str | None:
        for anchor in b.find_elements(By.TAG_NAME, "a"):
            if anchor.text.strip() == name and anchor.get_attribute("href"):
                return str(anchor.get_attribute("href"))
        return None

    return _wait(browser, timeout).until(find)


def page_text_containing(browser: Any, needle: str, *, timeout: float = 60) -> str:
    """Wait until the page's visible text contains ``needle``; return the text.

    :param browser: the WebDriver.
    :param needle: text to wait for.
    :param timeout: seconds.
    """
    from selenium.webdriver.common.by import By

    def read(b: Any) -> str | None:
        text = b.find_element(By.TAG_NAME, "body").text
        return text if needle in text else None

    return _wait(browser, timeout).until(read)


def _wait(browser: Any, timeout: float) -> Any:
    """A WebDriverWait that retries when the React UI re-renders an element under our feet."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(
        browser, timeout, poll_frequency=0.25,
        ignored_exceptions=(StaleElementReferenceException, NoSuchElementException),
    )
