"""What commands print for people: tables whole whatever the terminal's width, what a list's
scores mean, and why a list of recommendations is shorter than asked for.

rich fits a table into the console's width (80 columns when it cannot tell) by cutting cells
to "…", so ``streamrec models list`` in a narrow terminal or a pipe lost its dates and
scores. ``print_table`` prints on a console at least as wide as the table needs: in a
terminal, at least its narrowest whole layout (columns marked ``no_wrap`` are never cut,
the others wrap at spaces); elsewhere (a pipe, a file, a test) its widest, one line per row,
which is what grep and log readers want.

>>> from rich.table import Table
>>> table = Table("version", "created")
>>> table.add_row("12", "2026-12-04 10:31:02")
>>> console = Console(width=10, force_terminal=False)
>>> print_table(table, console)  # doctest: +NORMALIZE_WHITESPACE
┏━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━┓
┃ version ┃ created             ┃
┡━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━┩
│ 12      │ 2026-12-04 10:31:02 │
└─────────┴─────────────────────┘
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from rich.console import Console
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table

if TYPE_CHECKING:
    from streamrec.model.explanations import ScoreScale

# Wide enough to measure any table's natural width.
UNBOUNDED_WIDTH = 100_000


def whole_table_width(table: Table, console: Console) -> int:
    """The width ``console`` must have to show ``table`` with no cell cut: its own width if
    that is enough."""
    needed = Measurement.get(console, console.options.update_width(UNBOUNDED_WIDTH), table)
    if not console.is_terminal:
        return max(console.width, needed.maximum)
    # rich's minimum lets a no_wrap column shrink to its longest word, which it then cannot
    # do: laid out at that width, the table comes out wider. That width fits it.
    width = max(console.width, needed.minimum)
    lines = Segment.split_lines(console.render(table, console.options.update_width(width)))
    return max([width, *(Segment.get_line_length(line) for line in lines)])


def print_table(table: Table, console: Console | None = None) -> None:
    """Print ``table`` on ``console`` (default: stdout) with every cell whole."""
    console = console or Console()
    width = whole_table_width(table, console)
    if width == console.width:
        console.print(table)
        return
    previous = console.width
    console.width = width
    try:
        console.print(table)
    finally:
        console.width = previous


def shortfall_note(
    listed: int, wanted: int, candidates: Collection[str], seen: Collection[str]
) -> str | None:
    """Why a user's list holds fewer than ``wanted`` items, or None when it is full. A list
    holds only items of the clusters' shortlists that the user has not interacted with (the
    user's top clusters', filled from every cluster's when they run out), so a user who has
    seen most of the items on every shortlist gets a shorter list.

    >>> shortfall_note(9, 10, {"a", "b", "c"}, {"a", "b"}) is None
    False
    >>> print(shortfall_note(1, 10, {"a", "b", "c"}, {"a", "b"}))  # doctest: +ELLIPSIS
    1 of 10 items: the user has already interacted with 2 of the 3 items on the clusters' ...
    >>> shortfall_note(10, 10, {"a"}, ()) is None
    True
    """
    if listed >= wanted:
        return None
    pool = set(candidates)
    already = len(pool & set(seen))
    return (
        f"{listed} of {wanted} items: the user has already interacted with {already:,} of the "
        f"{len(pool):,} items on the clusters' shortlists, and a recommendation leaves those "
        "out"
    )


def score_caption(
    scale: ScoreScale, vote_weight: float | None = None, explained: bool = False
) -> str:
    """What the score column of a list on ``scale`` means, in a sentence (docs/api.md, "the
    scale"); ``vote_weight`` is the re-ranking's weight of log(vote) (None: named w). Unless
    the table is ``explained``, it says where a 0-1 number for each item is.

    >>> from streamrec.model.explanations import ScoreScale
    >>> print(score_caption(ScoreScale.RERANKED, 0.5))  # doctest: +NORMALIZE_WHITESPACE
    score = retrieval + 0.5 log(vote), on no fixed scale: higher is better, compare within
    one list. Each item's 0-1 support: `streamrec recommend USER --explain`
    >>> print(score_caption(ScoreScale.POPULARITY))
    score = the item's popularity relative to the most popular item's, 0-1
    """
    weight = "w" if vote_weight is None else f"{vote_weight:g}"
    meanings = {
        "vote": "the clusters' vote, Σ membership x shortlist weight, 0 or more: higher is better",
        "reranked": f"retrieval + {weight} log(vote), on no fixed scale: higher is better, "
        "compare within one list",
        "fused": "rank fusion of the sources, Σ weight / (60 + rank), at most Σ weights / 61: "
        "higher is better",
        "popularity": "the item's popularity relative to the most popular item's, 0-1",
    }
    caption = f"score = {meanings[scale.value]}"
    if not explained and scale.value != "popularity":
        caption += ". Each item's 0-1 support: `streamrec recommend USER --explain`"
    return caption
