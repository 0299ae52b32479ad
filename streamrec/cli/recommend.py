"""``streamrec recommend USER``: a user's current recommendations, from the stored state."""

from __future__ import annotations

import time

import click

from streamrec.config import Settings


@click.command(name="recommend")
@click.argument("user_id")
@click.option("--json", "as_json", is_flag=True, help="Print the recommendation message JSON.")
@click.pass_obj
def command(settings: Settings, user_id: str, as_json: bool) -> None:
    """Print USER's current recommendations (with item titles when known)."""
    from rich.console import Console
    from rich.table import Table

    from streamrec.errors import UserFacingError
    from streamrec.services.recommending import current_recommendations
    from streamrec.storage import UnitOfWork, create_database_engine
    from streamrec.validation import encode_recommendation

    engine = create_database_engine(settings.effective_database_url)
    try:
        with UnitOfWork(engine) as uow:
            message = current_recommendations(uow, user_id, settings.model, time.time())
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
    clusters = ", ".join(f"{cluster} ({share:.2f})" for cluster, share in message.top_clusters)
    heading = f"{user_id}: model version {message.model_version}, clusters {clusters or 'none'}"
    if not known_user:
        heading += " (unknown user: the global shortlist)"
    table = Table(title=heading)
    for column in ("rank", "item", "title", "score"):
        table.add_column(column, justify="right" if column in ("rank", "score") else "left")
    for rank, item in enumerate(message.items, start=1):
        stored = titles.get(item.item_id)
        title = stored.title if stored is not None and stored.title else ""
        table.add_row(str(rank), item.item_id, title, f"{item.score:.4f}")
    Console().print(table)
