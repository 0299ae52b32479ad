"""``streamrec recommend USER [--explain]``: a user's current recommendations, from the
stored state; with ``--explain``, which clusters voted for each item and how much
(``streamrec.services.explaining``; the scale is in docs/api.md)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from streamrec.config import Settings

if TYPE_CHECKING:
    from streamrec.events import RecommendationMessage


def _user_id(context: click.Context, _: click.Parameter, user_id: str) -> str:
    """USER as an event would give it: not empty, not too long, no control characters."""
    from streamrec.validation import read_id
    from streamrec.validation.decoding import InvalidEvent

    settings = context.find_object(Settings) or Settings()
    try:
        return read_id(user_id, "user id", settings.events.max_id_length)
    except InvalidEvent as error:
        raise click.BadParameter(error.rejection.detail) from None


@click.command(name="recommend")
@click.argument("user_id", callback=_user_id)
@click.option("--json", "as_json", is_flag=True, help="Print the recommendation message JSON.")
@click.option(
    "--explain",
    is_flag=True,
    help="For each item: the clusters that voted for it, their share of its vote, and its "
    "support (0-1). With --json, the explained JSON of the HTTP API.",
)
@click.pass_obj
def command(settings: Settings, user_id: str, as_json: bool, explain: bool) -> None:
    """Print USER's current recommendations (with item titles when known)."""
    if explain:
        _explain(settings, user_id, as_json)
        return
    from rich.table import Table

    from streamrec.cli.display import print_table
    from streamrec.errors import UserFacingError
    from streamrec.services.recommending import current_recommendations
    from streamrec.storage import UnitOfWork, create_database_engine
    from streamrec.wire.recommendations import encode_recommendation

    engine = create_database_engine(settings.effective_database_url, timeouts=settings.timeouts)
    try:
        with UnitOfWork(engine) as uow:
            message = current_recommendations(uow, user_id, settings.serving, time.time())
            if message is None:
                raise UserFacingError(
                    "no active model version: train one first (`streamrec train --dataset ...`)"
                )
            titles = uow.items.get_many(item.item_id for item in message.items)
            known_user = bool(uow.interactions.for_users([user_id]))
    finally:
        engine.dispose()
    if as_json:
        click.echo(encode_recommendation(message).decode("utf-8"))
        return
    table = Table(title=_heading(user_id, message, known_user))
    for column in ("rank", "item", "title", "score"):
        justify = "right" if column in ("rank", "score") else "left"
        table.add_column(column, justify=justify, no_wrap=column != "title")
    for rank, item in enumerate(message.items, start=1):
        stored = titles.get(item.item_id)
        title = stored.title if stored is not None and stored.title else ""
        table.add_row(str(rank), item.item_id, title, f"{item.score:.4f}")
    print_table(table)


def _explain(settings: Settings, user_id: str, as_json: bool) -> None:
    import json

    from rich.table import Table

    from streamrec.cli.display import print_table
    from streamrec.errors import UserFacingError
    from streamrec.services.explaining import Explainer, explained_document
    from streamrec.storage import UnitOfWork, create_database_engine

    engine = create_database_engine(settings.effective_database_url, timeouts=settings.timeouts)
    try:
        with UnitOfWork(engine) as uow:
            explained = Explainer(settings.serving).for_user(uow, user_id, time.time())
    finally:
        engine.dispose()
    if explained is None:
        raise UserFacingError(
            "no active model version: train one first (`streamrec train --dataset ...`)"
        )
    if as_json:
        click.echo(json.dumps(explained_document(explained), indent=2))
        return
    message = explained.message
    table = Table(
        title=_heading(user_id, message, explained.known_user),
        caption="share: part of the item's vote; support: 0-1",
    )
    numeric = ("rank", "score", "support")
    for column in ("rank", "item", "title", "score", "support", "voted by (share)"):
        justify = "right" if column in numeric else "left"
        table.add_column(column, justify=justify, no_wrap=column in (*numeric, "item"))
    for rank, why in enumerate(explained.explanations, start=1):
        stored = explained.items.get(why.item_id)
        voters = ", ".join(f"{vote.cluster} ({vote.share:.0%})" for vote in why.clusters)
        title = stored.title or "" if stored is not None else ""
        table.add_row(
            str(rank), why.item_id, title, f"{why.score:.4f}", f"{why.support:.3f}", voters
        )
    print_table(table)


def _heading(user_id: str, message: RecommendationMessage, known_user: bool) -> str:
    """The table's title: who, which version, the user's clusters; each on its own line so that
    a narrow terminal wraps the cluster list, never the note that the user is unknown."""
    clusters = ", ".join(f"{cluster} ({share:.2f})" for cluster, share in message.top_clusters)
    lines = [f"{user_id}: model version {message.model_version}", f"clusters {clusters or 'none'}"]
    if not known_user:
        lines.append("unknown user: the global shortlist")
    return "\n".join(lines)
