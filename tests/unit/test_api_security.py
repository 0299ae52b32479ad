"""Who may read and act on ``streamrec serve``, on a SQLite file: forged or stale sessions,
CSRF tokens bound to their session, no open redirect after sign-in, hostile stored text
escaped on the dashboard, and the headers that keep the pages from being framed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from streamrec.api.app import create_app
from streamrec.api.context import ApiContext
from streamrec.api.security import SESSION_COOKIE, Role, SessionKeys
from streamrec.config import Settings
from streamrec.storage import UnitOfWork, create_database_engine
from streamrec.storage.migrations import upgrade
from streamrec.storage.records import DeadLetter

OPERATOR_TOKEN = "an-operator-token-0123456789"
READ_TOKEN = "a-read-token-0123456789"


def test_a_session_is_void_once_its_role_is_changed_or_the_tokens_are() -> None:
    keys = SessionKeys(OPERATOR_TOKEN, READ_TOKEN)
    reader = keys.new_session(Role.READER, now=0.0)
    forged = reader.replace("reader", "operator", 1)
    assert keys.session_of(reader, now=1.0) is not None
    assert keys.session_of(forged, now=1.0) is None
    assert SessionKeys("another-operator-token-000", READ_TOKEN).session_of(reader, 1.0) is None


def test_a_csrf_token_belongs_to_its_session() -> None:
    keys = SessionKeys(OPERATOR_TOKEN, None)
    first = keys.session_of(keys.new_session(Role.OPERATOR, 0.0), 1.0)
    second = keys.session_of(keys.new_session(Role.OPERATOR, 0.0), 1.0)
    assert first is not None and second is not None
    assert keys.csrf_token_valid(first, keys.csrf_token(first))
    assert not keys.csrf_token_valid(first, keys.csrf_token(second))
    assert not keys.csrf_token_valid(first, None)
    assert not keys.csrf_token_valid(first, "")


def test_tokens_shorter_than_sixteen_characters_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        Settings(api={"operator_token": "short"})


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{(tmp_path / 'streamrec.db').as_posix()}"
    upgrade(url)
    engine = create_database_engine(url)
    with UnitOfWork(engine) as uow:
        uow.dead_letters.add_many(
            [DeadLetter("interactions", b"<script>alert(1)</script>", "invalid_json", "<b>x</b>")]
        )
        uow.commit()
    settings = Settings(
        database_url=url,
        data_dir=tmp_path,
        kafka={"bootstrap_servers": "127.0.0.1:9"},
        api={"operator_token": OPERATOR_TOKEN, "results_dir": tmp_path},
    )
    try:
        with TestClient(create_app(ApiContext.create(settings, engine))) as client:
            yield client
    finally:
        engine.dispose()


def test_stored_text_is_escaped_and_pages_cannot_be_framed(client: TestClient) -> None:
    page = client.get("/dashboard/dead-letters")
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;b&gt;x&lt;/b&gt;" in page.text
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]


def test_signing_in_never_redirects_to_another_site(client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/dashboard", "/dashboard//x"):
        response = client.post(
            "/dashboard/login",
            data={"token": OPERATOR_TOKEN, "next": target},
            follow_redirects=False,
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard?notice=signed-in"
    cookie = response.headers["set-cookie"]
    assert SESSION_COOKIE in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_plots_are_only_png_files_inside_the_results_directory(
    client: TestClient, tmp_path: Path
) -> None:
    (tmp_path / "quality.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    assert client.get("/dashboard/plots/quality.png").status_code == 200
    assert client.get("/dashboard/plots/streamrec.db").status_code == 404
    assert client.get("/dashboard/plots/..%2F..%2Fetc%2Fpasswd.png").status_code == 404
    assert "quality.png" in client.get("/dashboard/plots").text
