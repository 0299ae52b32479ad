"""Every dashboard page in headless chromium, served by a real uvicorn over real PostgreSQL:
each page opens and shows what it is for; the forms (search, user, history, sign-in) and the
roll-back button work as a person would use them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import RunningServer
from tests.fixtures.databases import PostgresqlSchemas
from tests.integration.api_support import (
    OPERATOR_TOKEN,
    STORED_OFFSETS,
    ServedState,
    api_settings,
    build_served_state,
)
from tests.integration.sources_support import with_sources_on
from tests.integration.trainer_support import REPOSITORY

pytestmark = pytest.mark.postgres
WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def served(postgresql_server_url: str, postgresql_schemas: PostgresqlSchemas) -> ServedState:
    return build_served_state(postgresql_server_url, postgresql_schemas, versions=2)


@pytest.fixture(scope="module")
def server(served: ServedState, browser) -> Iterator[RunningServer]:
    settings = api_settings(
        served.url, operator_token=OPERATOR_TOKEN, results_dir=REPOSITORY / "bench" / "results"
    )
    with RunningServer(settings) as running:
        yield running


class Dashboard:
    """The browser on the test server: opens pages, finds things, keeps screenshots."""

    def __init__(self, browser, server: RunningServer, screenshots: Path | None) -> None:
        self.browser = browser
        self.server = server
        self.screenshots = screenshots

    def open(self, path: str) -> None:
        self.browser.get(self.server.url + path)

    def shot(self, name: str) -> None:
        if self.screenshots is not None:
            self.browser.save_screenshot(str(self.screenshots / f"{name}.png"))

    def text(self, selector: str) -> str:
        from selenium.webdriver.common.by import By

        return self.browser.find_element(By.CSS_SELECTOR, selector).text

    def rows(self, table: str) -> list[str]:
        """The text of each data row of a table (the header row left out)."""
        from selenium.webdriver.common.by import By

        found = self.browser.find_elements(By.CSS_SELECTOR, f"{table} tr")
        return [row.text for row in found[1:]]

    def type_and_submit(self, field: str, text: str, button: str) -> None:
        """Type into a form's field and press its button; returns when the next page is in."""
        from selenium.webdriver.common.by import By

        box = self.browser.find_element(By.CSS_SELECTOR, field)
        box.clear()
        box.send_keys(text)
        self.click(button)

    def click(self, selector: str) -> None:
        """Click a link or button that leads to a page; returns when that page is in."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.ui import WebDriverWait

        page = self.browser.find_element(By.TAG_NAME, "html")
        self.browser.find_element(By.CSS_SELECTOR, selector).click()
        # The old page's root goes stale once the browser has replaced the page.
        WebDriverWait(self.browser, WAIT_SECONDS).until(expected_conditions.staleness_of(page))

    def title(self) -> str:
        return self.browser.title


@pytest.fixture(scope="module")
def dashboard(browser, server: RunningServer, screenshots_directory: Path | None) -> Dashboard:
    return Dashboard(browser, server, screenshots_directory)


def test_the_pipeline_page_shows_health_lag_and_dead_letters(
    dashboard: Dashboard, served: ServedState
) -> None:
    dashboard.open("/dashboard")
    assert dashboard.title() == "Pipeline · streamrec"
    assert dashboard.text("h1") == "Pipeline health"
    assert dashboard.text("#active-version") == str(served.versions[-1])
    lag_rows = dashboard.rows("#lag")
    for partition, offset in STORED_OFFSETS.items():
        assert any(row.startswith(f"interactions {partition} {offset}") for row in lag_rows)
    assert "cannot read the broker's offsets" in dashboard.text("#broker-error")
    assert dashboard.text("#dead-letter-total") == "2"
    reasons = dashboard.rows("#dead-letter-reasons")
    assert reasons == ["invalid_json 1", "unsupported_schema_version 1"]
    dashboard.shot("pipeline")


def test_the_dead_letters_page_lists_them_with_their_source(dashboard: Dashboard) -> None:
    dashboard.open("/dashboard/dead-letters")
    rows = dashboard.rows("#dead-letters")
    assert len(rows) == 2
    assert any("invalid_json" in row and "{not json" in row for row in rows)
    dashboard.click("#dead-letters a, p a")  # the first reason link
    assert "Dead letters:" in dashboard.text("h1")
    dashboard.open("/dashboard/dead-letters")
    dashboard.shot("dead-letters")


def test_the_models_page_lists_versions_and_wants_a_sign_in_for_the_buttons(
    dashboard: Dashboard, served: ServedState
) -> None:
    dashboard.open("/dashboard/models")
    versions = dashboard.rows("#versions")
    assert [row.split()[:2] for row in versions] == [
        [str(served.versions[1]), "active"],
        [str(served.versions[0]), "retired"],
    ]
    from selenium.webdriver.common.by import By

    for button in ("#train-now", "#roll-back"):
        assert not dashboard.browser.find_element(By.CSS_SELECTOR, button).is_enabled()
    assert "Sign in with the operator token" in dashboard.text("main")


def test_the_cluster_browser_opens_a_cluster_and_its_shortlist(dashboard: Dashboard) -> None:
    dashboard.open("/dashboard/clusters")
    rows = dashboard.rows("#clusters")
    assert rows and "Film number" in rows[0]
    dashboard.shot("clusters")
    dashboard.click("#clusters td a")
    assert dashboard.text("h1").startswith("Cluster ")
    shortlist = dashboard.rows("#shortlist")
    assert shortlist and shortlist[0].startswith("1 ")
    assert dashboard.rows("#statistics")
    dashboard.shot("cluster")


def test_items_are_searched_by_title_and_show_their_shortlists(
    dashboard: Dashboard, served: ServedState
) -> None:
    wanted = served.items[3]
    dashboard.open("/dashboard/items")
    dashboard.type_and_submit("#item-search", f"number {wanted}", "#search")
    rows = dashboard.rows("#items")
    assert any(row.startswith(f"{wanted} Film number {wanted}") for row in rows)
    dashboard.shot("items")
    dashboard.open("/dashboard/clusters")
    dashboard.click("#clusters td:last-child a")  # an item on a shortlist
    assert dashboard.text("h1").startswith("Item ")
    assert dashboard.rows("#item-shortlists")
    dashboard.shot("item")


def test_a_users_page_explains_their_recommendations(
    dashboard: Dashboard, served: ServedState
) -> None:
    user_id = served.users[2]
    dashboard.open("/dashboard/users")
    assert dashboard.rows("#users")
    dashboard.shot("users")
    dashboard.type_and_submit("#user-search", user_id, "#open-user")
    assert dashboard.text("#user-id") == user_id
    assert len(dashboard.rows("#memberships")) == 3
    recommendations = dashboard.rows("#recommendations")
    assert len(recommendations) == 10
    # The sources off (the default): every item is the clusters' vote, with its clusters.
    assert all("clusters 100%: " in row and "%)" in row for row in recommendations)
    assert "re-ranked" in dashboard.text("#recommendations + p")
    assert dashboard.rows("#history")
    dashboard.shot("user")


def test_a_users_page_names_the_neighbours_and_popularity_that_put_items_there(
    browser, served: ServedState, screenshots_directory: Path | None
) -> None:
    """The same state served with the item neighbours and the decayed popularity on."""
    with RunningServer(with_sources_on(served).settings) as running:
        dashboard = Dashboard(browser, running, screenshots_directory)
        user_id = served.users[2]
        dashboard.open(f"/dashboard/users/{user_id}")
        assert dashboard.text("#user-id") == user_id
        recommendations = dashboard.rows("#recommendations")
        assert len(recommendations) == 10
        text = "\n".join(recommendations)
        assert "neighbours " in text and "% after " not in text and ": after" in text
        assert all(row.count("%") >= 1 for row in recommendations)
        assert "fused by rank" in dashboard.text("#recommendations + p")
        # A recent item that named a neighbour links to its page.
        dashboard.click("#recommendations .source a[href^='/dashboard/items/']")
        assert dashboard.text("h1").startswith("Item ")
        dashboard.open(f"/dashboard/users/{user_id}")
        dashboard.shot("user-sources")


def test_an_ad_hoc_history_is_recommended_for(dashboard: Dashboard, served: ServedState) -> None:
    dashboard.open("/dashboard/try")
    history = ", ".join(served.items[:4]) + f", {served.items[4]}:0.5"
    dashboard.type_and_submit("#history-items", history, "#recommend")
    assert dashboard.text("#history-clusters")
    recommendations = dashboard.rows("#recommendations")
    assert len(recommendations) == 10
    assert not any(row.split()[1] in served.items[:5] for row in recommendations)
    dashboard.shot("try-a-history")


def test_the_quality_plots_are_shown(dashboard: Dashboard) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    dashboard.open("/dashboard/plots")
    images = dashboard.browser.find_elements(By.CSS_SELECTOR, "#plots img")
    assert images
    first = images[0]
    WebDriverWait(dashboard.browser, WAIT_SECONDS).until(
        lambda _: dashboard.browser.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", first
        )
    )
    dashboard.shot("quality-plots")


def test_an_operator_signs_in_and_rolls_back(dashboard: Dashboard, served: ServedState) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    first, second = served.versions
    dashboard.open("/dashboard/login?next=/dashboard/models")
    dashboard.shot("sign-in")
    dashboard.type_and_submit("#token", "a wrong token of some length", "#sign-in")
    assert "not one of this server's" in dashboard.text("#login-error")
    dashboard.type_and_submit("#token", OPERATOR_TOKEN, "#sign-in")
    assert dashboard.text("#notice") == "Signed in."
    assert dashboard.text("h1") == "Model versions"
    dashboard.click("#roll-back")
    assert "Roll back started" in dashboard.text("#notice")

    def finished(_: object) -> bool:
        dashboard.open("/dashboard/models")
        return any(" done " in f" {row} " for row in dashboard.rows("#actions"))

    WebDriverWait(dashboard.browser, WAIT_SECONDS, poll_frequency=0.5).until(finished)
    assert f"version {first} is active" in dashboard.rows("#actions")[0]
    assert [row.split()[:2] for row in dashboard.rows("#versions")] == [
        [str(second), "retired"],
        [str(first), "active"],
    ]
    dashboard.shot("models")
