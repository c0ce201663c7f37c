"""Repositories: small objects reachable from a Project; each call opens its own session (joining the
calling thread's transaction when there is one) and returns frozen records."""

from conpet.store.repositories.annotations import AnnotationRepository
from conpet.store.repositories.files import FileRepository
from conpet.store.repositories.leases import LeaseRepository
from conpet.store.repositories.modules import ModuleRepository
from conpet.store.repositories.predictions import PredictionRepository
from conpet.store.repositories.runs import RunRepository
from conpet.store.repositories.sentences import SENTENCE_STATUSES, SentenceRepository
from conpet.store.repositories.tasks import TaskRepository
from conpet.store.repositories.types import TypeRepository

__all__ = [
    "SENTENCE_STATUSES",
    "AnnotationRepository",
    "FileRepository",
    "LeaseRepository",
    "ModuleRepository",
    "PredictionRepository",
    "RunRepository",
    "SentenceRepository",
    "TaskRepository",
    "TypeRepository",
]
