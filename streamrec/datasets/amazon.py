"""Amazon review data in the sequential-recommendation format of S3-Rec / ICLRec / ELCRec.

``<Name>.txt`` holds one user per line, ``user item item ...``, items in time order, with no
ratings and no timestamps; ``<Name>_item2attributes.json`` maps each item to categorical
attribute ids. Every action becomes an implicit ``purchase`` event of weight 1.

There is no global time order in this format, only each user's own order. The loader therefore
gives a user's k-th action the timestamp k (seconds): per-user order is exact, and a replay in
timestamp order interleaves users round by round (every user's first action, then every
second action ...), which is one possible global order, not the real one.

>>> import tempfile
>>> from pathlib import Path
>>> directory = Path(tempfile.mkdtemp())
>>> _ = (directory / "Toys.txt").write_text("1 10 11\\n2 11 12 10\\n")
>>> dataset = load_amazon_sequences(directory)
>>> dataset.name, len(dataset.table), dataset.table.timestamps.tolist()
('amazon-toys', 5, [0.0, 0.0, 1.0, 1.0, 2.0])
"""

from __future__ import annotations

import json
from pathlib import Path

from streamrec.datasets.base import Dataset, InteractionTable
from streamrec.datasets.files import (
    READ_ERRORS,
    DatasetFormatError,
    find_optional_data_file,
    open_text,
    read_lines,
)
from streamrec.events import ItemEvent

PURCHASE = "purchase"
PURCHASE_WEIGHT = 1.0
ATTRIBUTES_SUFFIX = "_item2attributes.json"


def sequence_file(directory: Path) -> Path | None:
    """The ``<Name>.txt`` sequence file of an Amazon-format directory, if it has one.

    With an attributes file the name is taken from it; otherwise the directory must hold
    exactly one candidate ``*.txt`` file that is not a README.
    """
    attributes = find_optional_data_file(directory, f"*{ATTRIBUTES_SUFFIX}")
    if attributes is not None:
        stem = attributes.name.split(ATTRIBUTES_SUFFIX)[0]
        return find_optional_data_file(directory, f"{stem}.txt")
    candidates = [
        path
        for path in sorted(directory.glob("*.txt")) + sorted(directory.glob("*.txt.gz"))
        if not path.name.upper().startswith("README") and "_sample" not in path.name
    ]
    return candidates[0] if len(candidates) == 1 else None


def load_amazon_sequences(directory: Path, name: str | None = None) -> Dataset:
    """Load ``<Name>.txt`` and, if present, ``<Name>_item2attributes.json`` from directory."""
    sequences_path = sequence_file(directory)
    if sequences_path is None:
        raise DatasetFormatError(
            f"{directory}: no Amazon sequence file (<Name>.txt, optionally gzipped)"
        )
    stem = sequences_path.name.removesuffix(".gz").removesuffix(".txt")
    rows: list[tuple[str, str, float, float, float | None]] = []
    seen_users: set[str] = set()
    for number, line in read_lines(sequences_path):
        user_id, *items = line.split()
        if not items:
            raise DatasetFormatError(f"{sequences_path}:{number}: user {user_id} has no items")
        if user_id in seen_users:
            raise DatasetFormatError(f"{sequences_path}:{number}: user {user_id} appears twice")
        seen_users.add(user_id)
        rows.extend(
            (user_id, item_id, PURCHASE_WEIGHT, float(position), None)
            for position, item_id in enumerate(items)
        )
    if not rows:
        raise DatasetFormatError(f"{sequences_path}: holds no sequences")
    attributes_path = find_optional_data_file(directory, f"{stem}{ATTRIBUTES_SUFFIX}")
    items = {} if attributes_path is None else _item_attributes(attributes_path)
    return Dataset(
        name=name or f"amazon-{stem.lower()}",
        table=InteractionTable.from_rows(rows),
        items=items,
        user_attributes={},
        event_type=PURCHASE,
    )


def _item_attributes(path: Path) -> dict[str, ItemEvent]:
    try:
        with open_text(path) as stream:
            attributes = json.load(stream)
    except (*READ_ERRORS, json.JSONDecodeError) as error:
        raise DatasetFormatError(f"{path}: cannot be read as JSON ({error})") from None
    if not isinstance(attributes, dict):
        raise DatasetFormatError(f"{path}: must be an object mapping item id to attribute ids")
    items: dict[str, ItemEvent] = {}
    for item_id, attribute_ids in attributes.items():
        if not isinstance(attribute_ids, list):
            raise DatasetFormatError(f"{path}: attributes of item {item_id} must be a list")
        items[str(item_id)] = ItemEvent(
            item_id=str(item_id),
            timestamp=0.0,
            categorical={"attributes": tuple(str(attribute) for attribute in attribute_ids)},
        )
    return items
