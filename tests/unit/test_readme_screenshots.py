"""Every dashboard page has a screenshot under docs/screenshots (taken by tests/browser with
STREAMREC_SCREENSHOTS_DIR=docs/screenshots), and the README links every one: a new page
fails here until it has its shot and its link."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute

from streamrec.api.dashboard import router

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
# Each HTML page of the dashboard and the screenshot of it.
PAGE_SHOTS = {
    "/dashboard": "pipeline",
    "/dashboard/dead-letters": "dead-letters",
    "/dashboard/models": "models",
    "/dashboard/clusters": "clusters",
    "/dashboard/clusters/{cluster}": "cluster",
    "/dashboard/items": "items",
    "/dashboard/items/{item_id}": "item",
    "/dashboard/users": "users",
    "/dashboard/users/{user_id}": "user",
    "/dashboard/try": "try-a-history",
    "/dashboard/plots": "quality-plots",
    "/dashboard/login": "sign-in",
}


def _pages() -> set[str]:
    """The dashboard's GET routes that answer with a page (a plot's PNG is not one)."""
    return {
        route.path
        for route in router.routes
        if isinstance(route, APIRoute)
        and "GET" in route.methods
        and route.response_class is HTMLResponse
    }


def test_every_dashboard_page_has_a_screenshot() -> None:
    assert _pages() == set(PAGE_SHOTS)
    missing = [name for name in PAGE_SHOTS.values() if not (SCREENSHOTS / f"{name}.png").is_file()]
    assert not missing, f"pages without a screenshot: {missing}"


def test_the_readme_links_every_screenshot() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unlinked = [
        path.name
        for path in sorted(SCREENSHOTS.glob("*.png"))
        if f"](docs/screenshots/{path.name})" not in readme
    ]
    assert not unlinked, f"screenshots the README does not link: {unlinked}"
