"""``streamrec recommend USER [--explain]``: a user's current recommendations, from the
stored state; with ``--explain``, which sources put each item there and how much (the
clusters' vote with its clusters, the item neighbours with the recent items that named it,
the decayed popularity: ``streamrec.services.explaining``; the scale is in docs/api.md)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import click

from streamrec.config import Settings

if TYPE_CHECKING:
    from rich.table import Table

    from streamrec.events import RecommendationMessage
    from streamrec.model.explanations import ItemExplanation
    from streamrec.services.explaining import ExplainedRecommendations

# The recent items a line of the --explain table names for the neighbours; the JSON has all.
RECENT_ITEMS_SHOWN = 3


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
    help="For each item: the sources that put it there with their share of its score (the "
    "clusters, with their share of its vote; the item neighbours, with the recent items "
    "that named it; the popularity), and its support (0-1). With --json, the explained JSON "
    "of the HTTP API.",
)
@click.pass_obj
def command(settings: Settings, user_id: str, as_json: bool, explain: bool) -> None:
    """Print USER's current recommendations (with item titles when known)."""
    if explain:
        _explain(settings, user_id, as_json)
        return
    from rich.table import Table

    from streamrec.cli.display import print_table, score_caption
    from streamrec.errors import UserFacingError
    from streamrec.services.recommending import voted_for_user
    from streamrec.storage import UnitOfWork, create_database_engine
    from streamrec.wire.recommendations import encode_recommendation

    engine = create_database_engine(settings.effective_database_url, timeouts=settings.timeouts)
    try:
        with UnitOfWork(engine) as uow:
            voted = voted_for_user(uow, user_id, settings.serving, time.time())
            if voted is None:
                raise UserFacingError(
                    "no active model version: train one first (`streamrec train --dataset ...`)"
                )
            message = voted.message
            titles = uow.items.get_many(item.item_id for item in message.items)
            known_user = bool(uow.interactions.for_users([user_id]))
    finally:
        engine.dispose()
    if as_json:
        click.echo(encode_recommendation(message).decode("utf-8"))
        return
    table = Table(
        title=_heading(user_id, message, known_user),
        caption=score_caption(voted.score_scale, settings.serving.rerank_vote_weight),
        caption_justify="left",
    )
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
    print_table(explained_table(user_id, explained, settings.serving.rerank_vote_weight))


def explained_table(
    user_id: str, explained: ExplainedRecommendations, vote_weight: float | None = None
) -> Table:
    """The ``--explain`` table: one row per item, its sources one per line (at 80 columns
    the title and the sources wrap, nothing is cut); the caption states the score's scale,
    with ``vote_weight``, the re-ranking's weight of log(vote), when given."""
    from rich.table import Table

    from streamrec.cli.display import score_caption

    table = Table(
        title=_heading(user_id, explained.message, explained.known_user),
        caption=score_caption(explained.score_scale, vote_weight, explained=True)
        + "; source N%: its share of the item's score; cluster(N%): its share of the "
        "vote; after ITEM(N%): a recent item whose neighbour it is; support: 0-1",
    )
    numeric = ("rank", "score", "support")
    for column in ("rank", "item", "title", "score", "support", "sources"):
        justify = "right" if column in numeric else "left"
        table.add_column(column, justify=justify, no_wrap=column in (*numeric, "item"))
    for rank, why in enumerate(explained.explanations, start=1):
        stored = explained.items.get(why.item_id)
        title = stored.title or "" if stored is not None else ""
        table.add_row(
            str(rank),
            why.item_id,
            title,
            f"{why.score:.4f}",
            f"{why.support:.3f}",
            "\n".join(source_lines(why)),
        )
    return table


def source_lines(why: ItemExplanation) -> list[str]:
    """One line per source that put the item there, largest share first: its share of the
    score, then the clusters with their share of the vote, or the recent items that named
    it with their share of the neighbours' score (a name and its share stay together when
    the line wraps). Without sources, the voting clusters.

    >>> from streamrec.model.explanations import ClusterVote, RecentItem, SourceShare
    >>> from streamrec.model.explanations import ItemExplanation as Why
    >>> from streamrec.model.rank_fusion import Source
    >>> recent = (RecentItem("318", 0.75), RecentItem("858", 0.25))
    >>> sources = (SourceShare(Source.NEIGHBOURS, 0.7, 1, 4.0, recent),
    ...            SourceShare(Source.CLUSTERS, 0.3, 5, 0.2))
    >>> source_lines(Why("1", 0.016, 0.2, 0.3, (ClusterVote(7, 0.5, 0.4, 0.2, 1.0),),
    ...                  None, sources))
    ['neighbours 70%: after 318(75%), 858(25%)', 'clusters 30%: 7(100%)']
    """
    from streamrec.model.rank_fusion import Source

    voters = ", ".join(f"{vote.cluster}({vote.share:.0%})" for vote in why.clusters)
    if not why.sources:
        return [voters]
    lines = []
    for source in why.sources:
        line = f"{source.source.value} {source.share:.0%}"
        if source.source is Source.CLUSTERS and voters:
            line += f": {voters}"
        elif source.recent_items:
            shown = source.recent_items[:RECENT_ITEMS_SHOWN]
            line += ": after " + ", ".join(f"{r.item_id}({r.share:.0%})" for r in shown)
            if len(source.recent_items) > len(shown):
                line += f", {len(source.recent_items) - len(shown)} more"
        lines.append(line)
    return lines


def _heading(user_id: str, message: RecommendationMessage, known_user: bool) -> str:
    """The table's title: who, which version, the user's clusters; each on its own line so that
    a narrow terminal wraps the cluster list, never the note that the user is unknown."""
    clusters = ", ".join(f"{cluster} ({share:.2f})" for cluster, share in message.top_clusters)
    lines = [f"{user_id}: model version {message.model_version}", f"clusters {clusters or 'none'}"]
    if not known_user:
        lines.append("unknown user: the global shortlist")
    return "\n".join(lines)
