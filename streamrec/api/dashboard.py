"""The operator dashboard under ``/dashboard``: server-rendered pages (Jinja2 templates in
``streamrec/api/templates``, no JavaScript) over the same services as the read API.

Pages: pipeline health and lag, dead letters, model versions with the train and roll-back
buttons, clusters, items, users (history, memberships, explained recommendations), an
ad-hoc history, and the quality plots under ``api.results_dir``. Who may see and do what is
in ``streamrec.api.security``; the buttons POST a form with the session's CSRF token.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from streamrec.api.context import ApiContext
from streamrec.api.read_api import context_of
from streamrec.api.security import CSRF_FIELD, SESSION_COOKIE, SESSION_SECONDS, Role, Session
from streamrec.services import browsing
from streamrec.services.explaining import HistoryEntry
from streamrec.services.operator_actions import NothingToRollBackError, previous_version

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
PAGE_SIZE = 50
# Notices a redirect may name (a fixed set: no text of the request is reflected).
NOTICES = {
    "train-requested": "Train request started: see the actions below.",
    "rollback-started": "Roll back started: see the actions below.",
    "busy": "Another action is still running; try again when it has ended.",
    "nothing-to-roll-back": "No earlier active version to roll back to.",
    "signed-in": "Signed in.",
    "signed-out": "Signed out.",
}

router = APIRouter(prefix="/dashboard", include_in_schema=False)


def _moment(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _ago(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    seconds = max(0.0, time.time() - timestamp)
    if seconds < 120:
        return f"{seconds:.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


TEMPLATES.env.filters.update(moment=_moment, number=_number, ago=_ago)


class SignInRequired(Exception):
    """A page needs a session: the app turns this into a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def session_of(request: Request, context: ApiContext) -> Session | None:
    return context.keys.session_of(request.cookies.get(SESSION_COOKIE), context.clock())


def readable(request: Request, context: Annotated[ApiContext, Depends(context_of)]) -> ApiContext:
    """The context, if this request may read; else a redirect to the sign-in page."""
    if not context.keys.reading_is_open and session_of(request, context) is None:
        raise SignInRequired(request.url.path)
    return context


Readable = Annotated[ApiContext, Depends(readable)]


def operator_session(request: Request, context: ApiContext, csrf_token: str | None) -> Session:
    """The operator session of a POST that changes something, checked with its CSRF token
    and origin; raises 403 otherwise."""
    if not context.keys.actions_enabled:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "actions are off: no api.operator_token")
    session = session_of(request, context)
    if session is None or session.role is not Role.OPERATOR:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "sign in with the operator token first")
    _check_origin(request)
    if not context.keys.csrf_token_valid(session, csrf_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    return session


def _check_origin(request: Request) -> None:
    """Browsers name the page a form was sent from; refuse one of another site."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if origin and urlsplit(origin).netloc != request.url.netloc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the form was sent from another site")


def render(
    request: Request, context: ApiContext, template: str, status_code: int = 200, **values: Any
) -> HTMLResponse:
    session = session_of(request, context)
    notice = NOTICES.get(request.query_params.get("notice", ""))
    return TEMPLATES.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "operator": session is not None and session.role is Role.OPERATOR,
            "csrf_field": CSRF_FIELD,
            "csrf_token": "" if session is None else context.keys.csrf_token(session),
            "actions_enabled": context.keys.actions_enabled,
            "reading_open": context.keys.reading_is_open,
            "notice": notice,
            **values,
        },
        status_code=status_code,
    )


def _redirect(path: str, notice: str | None = None) -> RedirectResponse:
    target = path if notice is None else f"{path}?notice={quote(notice)}"
    return RedirectResponse(target, status_code=status.HTTP_303_SEE_OTHER)


# Pages ---------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def overview(request: Request, context: Readable) -> HTMLResponse:
    view = context.status()
    with context.unit_of_work() as uow:
        runs = browsing.training_runs(uow, 1)
    return render(
        request,
        context,
        "overview.html",
        view=view,
        report=view.health.status,
        latest_run=runs[0] if runs else None,
        actions=context.actions.recent()[:3],
    )


@router.get("/dead-letters", response_class=HTMLResponse)
def dead_letters(request: Request, context: Readable, reason: str | None = None) -> HTMLResponse:
    with context.unit_of_work() as uow:
        letters = uow.dead_letters.recent(100, reason or None)
        counts = dict(sorted(uow.dead_letters.counts_by_reason().items()))
    return render(
        request, context, "dead_letters.html", letters=letters, counts=counts, reason=reason
    )


@router.get("/models", response_class=HTMLResponse)
def models(request: Request, context: Readable) -> HTMLResponse:
    with context.unit_of_work() as uow:
        versions = browsing.model_versions(uow)
        runs = browsing.training_runs(uow, 20)
    target = previous_version(versions)
    return render(
        request,
        context,
        "models.html",
        versions=versions,
        runs=runs,
        rollback_target=None if target is None else target.version,
        actions=context.actions.recent(),
        running=context.actions.running(),
    )


@router.get("/clusters", response_class=HTMLResponse)
def clusters(request: Request, context: Readable) -> HTMLResponse:
    with context.unit_of_work() as uow:
        version = uow.models.active_version()
        overview = [] if version is None else browsing.clusters_overview(uow, version, top=5)
        titles = browsing.titles(uow, [i for c in overview for i, _ in c.top_items])
    return render(
        request, context, "clusters.html", version=version, clusters=overview, titles=titles
    )


@router.get("/clusters/{cluster}", response_class=HTMLResponse)
def cluster(request: Request, cluster: int, context: Readable) -> HTMLResponse:
    with context.unit_of_work() as uow:
        version = uow.models.active_version()
        detail = None if version is None else browsing.cluster_detail(uow, version, cluster)
        if detail is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no cluster {cluster}")
        named = [i for i, _ in detail.shortlist] + [row.item_id for row in detail.statistics]
        titles = browsing.titles(uow, named)
    return render(request, context, "cluster.html", version=version, detail=detail, titles=titles)


@router.get("/items", response_class=HTMLResponse)
def items(
    request: Request, context: Readable, q: str | None = None, after: str | None = None
) -> HTMLResponse:
    query = (q or "").strip()[:200] or None
    with context.unit_of_work() as uow:
        page = uow.catalogue.items_page(after=after, limit=PAGE_SIZE, title_contains=query)
        total = uow.items.count()
    next_after = page[-1].item_id if len(page) == PAGE_SIZE else None
    return render(
        request, context, "items.html", items=page, q=query, next_after=next_after, total=total
    )


@router.get("/items/{item_id}", response_class=HTMLResponse)
def item(request: Request, item_id: str, context: Readable) -> HTMLResponse:
    with context.unit_of_work() as uow:
        detail = browsing.item_detail(uow, item_id, uow.models.active_version())
    if detail.item is None and not detail.shortlists:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no item {item_id!r} is known")
    return render(request, context, "item.html", detail=detail)


@router.get("/users", response_class=HTMLResponse)
def users(
    request: Request, context: Readable, user_id: str | None = None, after: str | None = None
) -> Response:
    if user_id:
        return _redirect(f"/dashboard/users/{quote(user_id.strip(), safe='')}")
    with context.unit_of_work() as uow:
        page = uow.users.ids(after=after, limit=PAGE_SIZE)
    next_after = page[-1] if len(page) == PAGE_SIZE else None
    return render(request, context, "users.html", users=page, next_after=next_after)


@router.get("/users/{user_id}", response_class=HTMLResponse)
def user(request: Request, user_id: str, context: Readable) -> HTMLResponse:
    with context.unit_of_work() as uow:
        explained = context.explainer.for_user(uow, user_id, context.clock(), with_history=True)
        attributes = uow.users.attributes_many([user_id]).get(user_id, {})
    return render(
        request, context, "user.html", user_id=user_id, explained=explained, attributes=attributes
    )


@router.get("/try", response_class=HTMLResponse)
def try_history(request: Request, context: Readable, items: str | None = None) -> HTMLResponse:
    """Recommendations for a history typed in (item ids, one per line or comma-separated,
    ``id:weight`` for a weight other than 1)."""
    entries, problem = _parse_history(items or "")
    explained = None
    if items and problem is None:
        with context.unit_of_work() as uow:
            explained = context.explainer.for_history(uow, entries, context.clock())
    return render(
        request,
        context,
        "try.html",
        items=items or "",
        explained=explained,
        problem=problem,
        status_code=400 if problem else 200,
    )


@router.get("/plots", response_class=HTMLResponse)
def plots(request: Request, context: Readable) -> HTMLResponse:
    directory = context.settings.api.results_dir
    found = sorted(directory.rglob("*.png")) if directory.is_dir() else []
    names = [path.relative_to(directory).as_posix() for path in found]
    return render(request, context, "plots.html", plots=names, directory=directory)


@router.get("/plots/{name:path}")
def plot(name: str, context: Readable) -> FileResponse:
    directory = context.settings.api.results_dir.resolve()
    path = (directory / name).resolve()
    # Only PNG files inside the results directory: no path leads anywhere else.
    if path.suffix != ".png" or not path.is_relative_to(directory) or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such plot")
    return FileResponse(path, media_type="image/png")


# Signing in and actions --------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
def login_form(
    request: Request, context: Annotated[ApiContext, Depends(context_of)], next: str = ""
) -> HTMLResponse:
    return render(request, context, "login.html", next=_safe_next(next), failed=False)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    context: Annotated[ApiContext, Depends(context_of)],
    token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "",
) -> Response:
    role = context.keys.role_of_token(token)
    if role is None:
        return render(
            request, context, "login.html", next=_safe_next(next), failed=True, status_code=401
        )
    response = _redirect(_safe_next(next) or "/dashboard", notice="signed-in")
    response.set_cookie(
        SESSION_COOKIE,
        context.keys.new_session(role, context.clock()),
        max_age=int(SESSION_SECONDS),
        path="/dashboard",
        httponly=True,
        secure=request.url.scheme == "https",
        samesite="strict",
    )
    return response


@router.post("/logout")
def logout(
    request: Request,
    context: Annotated[ApiContext, Depends(context_of)],
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    session = session_of(request, context)
    if session is None or not context.keys.csrf_token_valid(session, csrf_token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    response = _redirect("/dashboard/login", notice="signed-out")
    response.delete_cookie(SESSION_COOKIE, path="/dashboard")
    return response


@router.post("/actions/train")
def train_now(
    request: Request,
    context: Annotated[ApiContext, Depends(context_of)],
    csrf_token: Annotated[str | None, Form()] = None,
    reason: Annotated[str, Form(max_length=500)] = "",
    force: Annotated[bool, Form()] = False,
) -> Response:
    """``streamrec train now``: a train request on the control topic."""
    operator_session(request, context, csrf_token)
    started = context.request_training(reason.strip() or None, force)
    return _redirect("/dashboard/models", "train-requested" if started else "busy")


@router.post("/actions/rollback")
def roll_back(
    request: Request,
    context: Annotated[ApiContext, Depends(context_of)],
    csrf_token: Annotated[str | None, Form()] = None,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """``streamrec models rollback``: back to the previously active version."""
    operator_session(request, context, csrf_token)
    try:
        started, _ = context.roll_back(reason.strip() or None)
    except NothingToRollBackError:
        return _redirect("/dashboard/models", "nothing-to-roll-back")
    return _redirect("/dashboard/models", "rollback-started" if started else "busy")


def _safe_next(next_path: str) -> str:
    """A page of the dashboard to go back to, never another site."""
    if next_path.startswith("/dashboard") and "//" not in next_path and "\\" not in next_path:
        return next_path
    return ""


def _parse_history(text: str) -> tuple[list[HistoryEntry], str | None]:
    """Item ids separated by commas or lines, each optionally ``id:weight``.

    >>> _parse_history("318, 858:0.5")
    ([HistoryEntry(item_id='318', weight=1.0), HistoryEntry(item_id='858', weight=0.5)], None)
    >>> _parse_history("1:9")[1]
    'weight of 1 must be a number in [-1, 1]'
    """
    entries = []
    for part in text.replace("\n", ",").split(","):
        token = part.strip()
        if not token:
            continue
        item_id, _, weight_text = token.rpartition(":") if ":" in token else (token, "", "")
        try:
            weight = float(weight_text) if weight_text else 1.0
        except ValueError:
            weight = 2.0
        if not -1.0 <= weight <= 1.0:
            return [], f"weight of {item_id} must be a number in [-1, 1]"
        entries.append(HistoryEntry(item_id, weight))
        if len(entries) > 1_000:
            return [], "at most 1,000 items"
    return entries, None
