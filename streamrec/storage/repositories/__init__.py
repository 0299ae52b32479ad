"""Repositories: each speaks streamrec's own types (streamrec.state, streamrec.events) and
hides the SQL. All of them share one unit of work's connection and transaction."""

from streamrec.storage.repositories.clusters import ClusterRepository
from streamrec.storage.repositories.cooccurrence import CooccurrenceRepository
from streamrec.storage.repositories.dead_letters import DeadLetterRepository
from streamrec.storage.repositories.interactions import InteractionRepository
from streamrec.storage.repositories.items import ItemRepository
from streamrec.storage.repositories.models import ModelRepository
from streamrec.storage.repositories.offsets import OffsetRepository
from streamrec.storage.repositories.popularity import PopularityRepository
from streamrec.storage.repositories.processed_events import ProcessedEventRepository
from streamrec.storage.repositories.training_runs import TrainingRunRepository
from streamrec.storage.repositories.users import UserRepository

__all__ = [
    "ClusterRepository",
    "CooccurrenceRepository",
    "DeadLetterRepository",
    "InteractionRepository",
    "ItemRepository",
    "ModelRepository",
    "OffsetRepository",
    "PopularityRepository",
    "ProcessedEventRepository",
    "TrainingRunRepository",
    "UserRepository",
]
