"""Progress in units of expected work, and an ETA from the measured rate of that work.

A training step's stages are known in advance from its budget (``conpet.methods.training_report.stage_plans``):
the training batches and the validation passes of each stage, the router's feature pass, the test
predictions, the saving. ``step_work`` turns them into ``Segment``s of work units (one unit: one example
through the backbone without gradients; a training example costs ``TRAIN_COST`` units). ``WorkProgress``
sits between the method's progress (whose fractions are the method's fixed shares of its step) and the
caller's sink: it places each event in its segment, reports the fraction of all units done, and an ETA
from the units per second measured after a warm-up (the first batches pay for one-off set-up), None
("estimating…") until enough work has been timed. Work a stage skips (early stopping) moves the
fraction on but never counts as work done fast.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from conpet.core.protocols import EtaEstimator, ProgressEvent, ProgressSink
from conpet.methods.replay import stage_batches

# Forward + backward + optimizer step of one training example, in no-grad forwards of one example:
# measured on the demo project (minilm, one CPU thread, dynamic-lda, six runs on a shared 2-core machine):
# 77-113 ms a training example in 8-example batches against 43-63 ms an example of the router's feature
# pass in 32-example batches, a ratio of 1.7-2.1 in five runs (3.3 in one); a validation example cost less
# (about 30 ms), counted as one unit all the same (a small share of a step).
TRAIN_COST = 1.8
# A test example of an old task costs almost nothing: its features and its expert's logits are cached.
CACHED_COST = 0.1
# Work before the rate is measured (one-off costs of the first batches), and work timed before an ETA, over
# at least MEASURE_REPORTS progress reports (one 5-batch report alone can be twice as fast as the rest).
WARMUP_SHARE = 0.02
MEASURE_SHARE = 0.05
MEASURE_REPORTS = 3
TRAINING_STAGES = ("feature-map", "selector", "expert", "training")
# The progress stage a method's events carry -> its stage_plans name (the single-module methods train "train").
STAGE_NAMES = {"train": "training"}


@dataclass(frozen=True)
class Segment:
    """One part of a job. A training stage's units are ``batches * batch_units + epochs * valid_units``."""

    name: str  # a training stage ("selector", "expert", "training"), "router", "evaluation", "saving" or
    # "fold-evaluation" (a cross-validation fold's predictions)
    batch_units: float = 0.0
    batches: int = 0
    valid_units: float = 0.0
    epochs: int = 0
    units: float = 0.0  # a segment without batches (router, evaluation, saving)
    patience: int | None = None  # early stopping (TrainConfig.patience): the stage may end before `epochs`
    batches_per_epoch: int = 0

    def expected_units(self, best_epoch: int) -> float:
        """The units of a stage with early stopping that stops ``patience`` epochs after ``best_epoch``
        (1-based): the soonest it can end, and what it does when validation accuracy rises no more."""
        if self.patience is None or not self.batches_per_epoch:
            return self.total
        stop = min(self.epochs, best_epoch + self.patience)
        return min(self.batches, stop * self.batches_per_epoch) * self.batch_units + stop * self.valid_units

    @property
    def total(self) -> float:
        return self.batches * self.batch_units + self.epochs * self.valid_units + self.units


def step_work(method: str, config: object, new: object, datas: Sequence[object],
              suggester_sentences: int = 0) -> list[Segment]:
    """The segments of one project training step of ``method`` (``TrainConfig`` ``config``) on the new task
    ``new`` with every seen task ``datas`` (``TaskData``): what ``conpet.project.training`` runs; with the
    suggesters' step over ``suggester_sentences`` labelled sentences when they train (``suggester_units``)."""
    from conpet.methods.registry import method_class
    from conpet.methods.replay import validation_size
    from conpet.methods.training_report import readapts_map, stage_plans

    c = config
    seen_types = sum(len(d.types) for d in datas)  # type: ignore[attr-defined]
    seen_examples = sum(len(d.train) for d in datas)  # type: ignore[attr-defined]
    plans = stage_plans(method, c, len(new.train), len(datas) > 1,  # type: ignore[attr-defined]
                        seen_types=seen_types, seen_examples=seen_examples)
    cls = method_class(method)
    routed = cls.routed_by_statistics
    out = []
    for p in plans:
        own_task = routed and p.stage != "feature-map"  # a re-adapted map validates on every learnt task
        valid_pool = len(new.valid) if own_task else sum(len(d.valid) for d in datas)  # type: ignore[attr-defined]
        n_valid = min(validation_size(p.batches_per_epoch, c.batch_size, c.valid_ratio),  # type: ignore[attr-defined]
                      max(valid_pool, len(datas) * c.min_valid_per_task))  # type: ignore[attr-defined]
        if routed and not new.valid:  # type: ignore[attr-defined]
            n_valid = len(new.train)  # type: ignore[attr-defined]  # an expert without validation data scores its training data
        epochs = math.ceil(p.batches / p.batches_per_epoch) if p.batches_per_epoch else 0
        out.append(Segment(p.stage, batch_units=TRAIN_COST * (p.n_new + p.n_old), batches=p.batches,
                           valid_units=float(n_valid), epochs=epochs, patience=p.patience,
                           batches_per_epoch=p.batches_per_epoch))
    if routed:  # the router's statistics: one feature pass over the new training examples (all, with a new map)
        fresh = readapts_map(method, c, seen_types, len(datas) > 1)  # type: ignore[arg-type]
        out.append(Segment("router", units=float(seen_examples if fresh else len(new.train))))  # type: ignore
    # The new task's test examples: one pass (the router's features, with the first expert's logits), one
    # more for a routed later expert or for a selector's experts; the old tasks' are cached.
    passes = 2.0 if (len(datas) > 1 or cls.dynamic_family and not routed) else 1.0
    n_old_test = sum(len(d.test) for d in datas[:-1])  # type: ignore[attr-defined]
    out.append(Segment("evaluation", units=passes * len(new.test) + CACHED_COST * n_old_test))  # type: ignore
    if suggester_sentences:
        out.append(Segment("suggesters", units=suggester_units(c, suggester_sentences)))
    out.append(Segment("saving", units=max(1.0, 0.01 * sum(s.total for s in out))))
    return out


def refresh_work(method: str, config: object, history: Sequence[object], experts: Sequence[int], added: int, *,
                 final: bool, suggester_sentences: int = 0) -> list[Segment]:
    """The segments of a refresh (``PETMethod.refresh``) of the learnt tasks ``history``: each retrained expert's
    stage as a new task's expert would run it, then the router's pass over the ``added`` examples; with
    ``final`` (no new task after it) the evaluation of every test set (cached but for the retrained experts'),
    the suggesters and saving too."""
    from conpet.methods.replay import validation_size
    from conpet.methods.training_report import stage_plans

    c = config
    out = []
    for j in experts:
        task = history[j]
        for p in stage_plans(method, c, len(task.train), True):  # type: ignore[arg-type,attr-defined]
            if p.stage != "expert":
                continue
            n_valid = min(validation_size(p.batches_per_epoch, c.batch_size, c.valid_ratio),  # type: ignore[attr-defined]
                          max(len(task.valid), c.min_valid_per_task)) if task.valid else len(task.train)  # type: ignore
            epochs = math.ceil(p.batches / p.batches_per_epoch) if p.batches_per_epoch else 0
            out.append(Segment("expert", batch_units=TRAIN_COST * (p.n_new + p.n_old), batches=p.batches,
                               valid_units=float(n_valid), epochs=epochs, patience=p.patience,
                               batches_per_epoch=p.batches_per_epoch))
    out.append(Segment("router", units=float(max(added, 1))))
    if not final:
        return out
    n_test = sum(len(d.test) for d in history)  # type: ignore[attr-defined]
    fresh = sum(len(history[j].test) for j in experts)  # type: ignore[attr-defined]
    out.append(Segment("evaluation", units=fresh + CACHED_COST * (n_test - fresh)))
    if suggester_sentences:
        out.append(Segment("suggesters", units=suggester_units(c, suggester_sentences)))
    out.append(Segment("saving", units=max(1.0, 0.01 * sum(s.total for s in out))))
    return out


def consolidate_work(config: object, datas: Sequence[object], suggester_sentences: int = 0) -> list[Segment]:
    """The segments of a consolidation (``PETMethod.consolidate``) of the learnt tasks ``datas``: the new feature
    map's stage over every stored training example, the router's pass over them all through it, the evaluation
    (every test example's features anew, the experts' logits cached), the suggesters and saving."""
    from conpet.methods.replay import validation_size
    from conpet.methods.training_report import feature_map_plan

    c = config
    seen = sum(len(d.train) for d in datas)  # type: ignore[attr-defined]
    p = feature_map_plan(c, seen)  # type: ignore[arg-type]
    n_valid = min(validation_size(p.batches_per_epoch, c.batch_size, c.valid_ratio),  # type: ignore[attr-defined]
                  max(sum(len(d.valid) for d in datas), len(datas) * c.min_valid_per_task))  # type: ignore
    epochs = math.ceil(p.batches / p.batches_per_epoch) if p.batches_per_epoch else 0
    out = [Segment("feature-map", batch_units=TRAIN_COST * p.n_new, batches=p.batches, valid_units=float(n_valid),
                   epochs=epochs, patience=p.patience, batches_per_epoch=p.batches_per_epoch),
           Segment("router", units=float(seen))]
    n_test = sum(len(d.test) for d in datas)  # type: ignore[attr-defined]
    out.append(Segment("evaluation", units=(1.0 + CACHED_COST) * n_test))
    if suggester_sentences:
        out.append(Segment("suggesters", units=suggester_units(c, suggester_sentences)))
    out.append(Segment("saving", units=max(1.0, 0.01 * sum(s.total for s in out))))
    return out


def training_units(segments: Sequence[Segment]) -> float:
    """The units of a job's training side (its training stages and the router's pass): what a step's
    ``train_seconds`` times, so that two jobs' plans compare."""
    return sum(s.total for s in segments if s.name in (*TRAINING_STAGES, "router"))


def suggester_units(config: object, sentences: int) -> float:
    """The expected work of one step of the mention detector and of the relatedness gate over a project's
    labelled ``sentences``: each trains its epochs of batches of 16 sentences, at most the batch limit
    (the defaults of ``DetectorSettings`` / ``RelatednessSettings``: 6 and 4 epochs)."""
    limit = getattr(config, "batch_limit", None)
    total = 0.0
    for epochs in (6, 4):
        total += TRAIN_COST * 16 * stage_batches(sentences, 16, epochs, limit)[1]
    return total


def fold_work(method: str, config: object, new: object, history_and_new: Sequence[object],
              folds: int) -> list[Segment]:
    """The segments of ``folds`` cross-validation trainings of the new task (``conpet.project.crossval``):
    each learns (k - 1) / k of its examples and predicts the rest ("fold-evaluation"); nothing is saved."""
    from dataclasses import replace

    n = len(new.train)  # type: ignore[attr-defined]
    held = n // folds
    fold_task = replace(new, train=new.train[: n - held], valid=(), test=new.train[:held])  # type: ignore
    olds = [replace(d, test=()) for d in history_and_new[:-1]]  # type: ignore[type-var]
    one = [seg if seg.name != "evaluation" else replace(seg, name="fold-evaluation")
           for seg in step_work(method, config, fold_task, [*olds, fold_task]) if seg.name != "saving"]
    return one * folds


class WorkProgress:
    """Forwards a job's progress to ``sink`` as the fraction of its segments' units done, with the ETA
    of ``conpet.core.protocols.EtaEstimator`` (after a warm-up). ``training_sink()`` takes the method's ``learn_task`` events (placed by their stage
    and metrics), ``segment_sink(name)`` a sub-job whose fraction covers one segment, ``finish(name)`` marks
    a segment done."""

    def __init__(self, sink: ProgressSink | None, segments: Sequence[Segment],
                 clock: Callable[[], float] = time.monotonic, prefix: str = "") -> None:
        self.sink = sink
        self.segments = list(segments)
        self.names = [s.name for s in self.segments]
        self.total = sum(s.total for s in self.segments) or 1.0
        self.eta = EtaEstimator(self.total, clock, warmup=WARMUP_SHARE, measure=MEASURE_SHARE, reports=MEASURE_REPORTS)
        self.prefix = prefix
        self._done = [0.0] * len(self.segments)
        self._skipped = 0.0
        self._current = 0
        self._batches: dict[int, int] = {}
        self._best: dict[int, tuple[float, int]] = {}  # a stage's best validation (score, 1-based epoch)
        self._unlikely = 0.0  # planned units of the current stage that early stopping should skip

    @property
    def fraction(self) -> float:
        return min(sum(self._done) / self.total, 1.0)

    def _enter(self, name: str) -> int | None:
        """Index of segment ``name`` (the first not yet passed), every segment before it finished."""
        for i in range(self._current, len(self.segments)):
            if self.names[i] == name:
                for j in range(self._current, i):
                    self._complete(j)
                self._current = i
                seg = self.segments[i]
                if seg.patience is not None and i not in self._best:  # before its first validation
                    self._unlikely = max(seg.total - max(seg.expected_units(1), self._done[i]), 0.0)
                return i
        return None

    def _complete(self, i: int) -> None:
        self._unlikely = 0.0
        left = self.segments[i].total - self._done[i]
        if left > 0:
            self._skipped += left  # planned, never run (early stopping, a stage with less to do)
            self._done[i] = self.segments[i].total

    def _set(self, i: int, units: float) -> None:
        self._done[i] = max(self._done[i], min(units, self.segments[i].total))

    def finish(self, name: str, message: str = "", stage: str = "") -> None:
        i = self._enter(name)
        if i is not None:
            self._set(i, self.segments[i].total)
        if message:
            self._emit(ProgressEvent(self.fraction, message, stage or name))

    def _emit(self, event: ProgressEvent) -> None:
        done = sum(self._done)
        # The bar counts the plan (it never runs backwards); the ETA expects early stopping to stop when it can.
        eta = self.eta.update(done, done - self._skipped, self.total - self._unlikely)
        if self.sink is not None:
            self.sink.report(ProgressEvent(self.fraction, self.prefix + event.message, event.stage, eta,
                                           event.metrics))

    def _on_training_event(self, event: ProgressEvent) -> None:
        m = event.metrics or {}
        stage = STAGE_NAMES.get(event.stage, event.stage)
        if stage in TRAINING_STAGES:
            i = self._enter(stage)
            if i is not None:
                seg = self.segments[i]
                if "batch" in m:
                    self._batches[i] = int(m["batch"])
                validated = int(m["epoch"]) if "valid_acc" in m else 0
                self._set(i, self._batches.get(i, 0) * seg.batch_units + validated * seg.valid_units)
                if validated and seg.patience is not None:
                    score = float(m["valid_acc"])
                    if i not in self._best or score > self._best[i][0]:
                        self._best[i] = (score, validated)
                    self._unlikely = max(seg.total - max(seg.expected_units(self._best[i][1]), self._done[i]), 0.0)
        elif event.stage == "router":
            self._enter("router")
        elif event.stage == "done":  # learn_task ended: every training-side segment of its job is finished
            first_after = self._end_of_job(self._current)
            for k in range(self._current, first_after):
                if k == self._current and self.names[k] == "router":
                    self._set(k, self.segments[k].total)  # the router's pass ran until now
                else:
                    self._complete(k)
            self._current = max(self._current, first_after)
        self._emit(event)

    def _end_of_job(self, start: int) -> int:
        """The first segment after the training job that segment ``start`` belongs to: one that is no training
        stage or router pass, or a training stage after a router pass (the next job of one step: a refresh
        followed by a new task or a consolidation)."""
        for k in range(start, len(self.names)):
            name = self.names[k]
            if name not in (*TRAINING_STAGES, "router"):
                return k
            if name in TRAINING_STAGES and k > start and self.names[k - 1] == "router":
                return k
        return len(self.names)

    def training_sink(self) -> ProgressSink:
        return _Forward(self, self._on_training_event)

    def segment_sink(self, name: str) -> ProgressSink:
        def on_event(event: ProgressEvent) -> None:
            i = self._enter(name)
            if i is not None:
                self._set(i, min(max(event.fraction, 0.0), 1.0) * self.segments[i].total)
            self._emit(event)

        return _Forward(self, on_event)

    def cancel_requested(self) -> bool:
        return bool(self.sink is not None and self.sink.cancel_requested())


class _Forward:
    def __init__(self, work: WorkProgress, on_event: Callable[[ProgressEvent], None]) -> None:
        self.work, self.on_event = work, on_event

    def report(self, event: ProgressEvent) -> None:
        self.on_event(event)

    def cancel_requested(self) -> bool:
        return self.work.cancel_requested()
