"""The browser fixtures: ``streamrec serve``'s app on a real uvicorn server in a thread, and
headless chromium driven by selenium.

Without chromium or chromedriver the browser tests are skipped, except under CI=true, where
they fail (CI installs both: .ci/run). With STREAMREC_SCREENSHOTS_DIR set, every page a test
opens is also saved there as a PNG (docs/screenshots/ holds the committed ones).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from streamrec.api.app import create_app
from streamrec.api.context import ApiContext
from streamrec.config import Settings
from streamrec.storage import create_database_engine

SCREENSHOTS_VARIABLE = "STREAMREC_SCREENSHOTS_DIR"
WINDOW = (1280, 1000)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
SERVER_START_SECONDS = 30.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"the browser tests must run when CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[str, str]:
    """(chromium binary, chromedriver), found on the PATH."""
    binary = next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        _unavailable("needs chromium and chromedriver (apt-get install chromium chromium-driver)")
    assert binary is not None and driver is not None
    return binary, driver


@pytest.fixture(scope="module")
def browser(chromium_paths: tuple[str, str]) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = chromium_paths
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI containers run as root, where the sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
    ):
        options.add_argument(argument)
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    try:
        yield session
    finally:
        session.quit()


class RunningServer:
    """The app on a real uvicorn server, on a free loopback port, in a thread; as a context
    manager, started on entry and stopped on exit."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_database_engine(settings.effective_database_url)
        self.context = ApiContext.create(settings, self.engine)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        self._socket = listener
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        config = uvicorn.Config(
            create_app(self.context), log_config=None, access_log=False, lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [listener]}, daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
        self.engine.dispose()

    def __enter__(self) -> RunningServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@pytest.fixture(scope="session")
def screenshots_directory() -> Path | None:
    value = os.environ.get(SCREENSHOTS_VARIABLE)
    if not value:
        return None
    directory = Path(value)
    directory.mkdir(parents=True, exist_ok=True)
    return directory
