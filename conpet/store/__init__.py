"""The project store: one SQLite database per project folder, through SQLAlchemy 2 with Alembic migrations.

Start with ``Project.open(folder)`` or ``Project.create(folder, name=...)``. Repositories hang off the
project (``project.types``, ``.sentences``, ``.annotations``, ``.tasks``, ``.runs``, ``.modules``,
``.predictions``, ``.logit_cache``, ``.leases``) and return frozen records, never ORM objects.
"""

from conpet.store.cache import ProjectLogitCache
from conpet.store.errors import (
    InvalidAnnotationError,
    NotAProjectError,
    NotFoundError,
    SchemaTooNewError,
    StaleSentenceError,
    StoreError,
    TypeInUseError,
)
from conpet.store.project import DB_NAME, MODULES_DIR, Project
from conpet.store.records import (
    AnnotationRecord,
    ImportReport,
    ModuleRecord,
    NewPrediction,
    PredictionRecord,
    ProjectRecord,
    RunRecord,
    SentenceRecord,
    TaskRecord,
    TypeRecord,
)

__all__ = [
    "DB_NAME",
    "MODULES_DIR",
    "AnnotationRecord",
    "ImportReport",
    "InvalidAnnotationError",
    "ModuleRecord",
    "NewPrediction",
    "NotAProjectError",
    "NotFoundError",
    "PredictionRecord",
    "Project",
    "ProjectLogitCache",
    "ProjectRecord",
    "RunRecord",
    "SchemaTooNewError",
    "SentenceRecord",
    "StaleSentenceError",
    "StoreError",
    "TaskRecord",
    "TypeInUseError",
    "TypeRecord",
]
