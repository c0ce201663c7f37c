"""Dynamic ConPET (CONPET.md III-C, Algorithm 1): a PET module selector plus one expert per task.

Step k (0-based here):
1. Selector: its head grows from k to k+1 outputs (old rows kept: dimension expansion), then it
   trains for iter1 batches (new examples + hierarchically sampled old ones) on the task id.
   (At k = 0 it has one output and nothing to learn, so that stage is skipped.)
2. Expert k: initialised fresh or from the selector's LoRA (`expert_init`), trained for iter2 batches.
   Each example activates the top-t experts by selector score; with teacher forcing the gold task's
   expert replaces the last of the top-t when missing. Active experts give logits over their own
   types, inactive ones the constant alpha; the concatenation over all seen types gets cross-entropy;
   only expert k learns.
3. Prediction: argmax of the concatenation (Eq. 2).

Examples in which expert k is not active contribute a constant to the loss (every logit they see
comes from a frozen module or is alpha), so their forward pass is skipped: the gradient is exactly
that of the paper's batch mean (the loss is summed over the active rows and divided by the full
batch size). With t = 1 and teacher forcing this means old examples cost nothing in the expert stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from conpet.core.errors import ConpetError
from conpet.core.protocols import ProgressSink, Reporter
from conpet.data.example import Example
from conpet.data.tasks import TaskData
from conpet.methods.base import PETMethod, Prediction, Stage, StepStats, length_order, softmax, unorder


class DynamicConPET(PETMethod):
    name: ClassVar[str] = "dynamic"
    description: ClassVar[str] = ("Dynamic ConPET as in the paper: a trained selector of task ids routes each "
                                  "input to one expert per task")
    SELECTOR: ClassVar[str] = "selector"
    new_labels_text: ClassVar[str] = ("learns labels added to learnt types only in its selector, at its next new "
                                      "task (which replays every learnt task's current data); old experts never "
                                      "retrain")
    use_selector: ClassVar[bool] = True  # False: every expert active (the "w/o selector" ablation)

    @staticmethod
    def expert(j: int) -> str:
        return f"expert_{j}"

    def logical_modules(self) -> list[str]:
        mods = [self.SELECTOR] if self.use_selector and self.task_types else []
        return mods + [self.expert(j) for j in range(self.n_tasks)]

    def output_kinds(self, name: str) -> list[str] | None:
        """A task-id selector's outputs are tasks (a task of mixed kinds: "")."""
        if name == self.SELECTOR and not self.type_level_selector:
            return [kinds[0] if len(set(kinds)) == 1 else "" for kinds in map(self.kinds_of, self.task_types)]
        return super().output_kinds(name)

    # --- routing ------------------------------------------------------------------------------------

    @property
    def type_level_selector(self) -> bool:
        return self.config.selector_labels == "type"

    def selector_logits(self, examples: Sequence[Example]) -> torch.Tensor:
        """[B, tasks]: the selector's score for each task's expert. A type-level selector's head scores
        every seen type; a task's score is the log-sum-exp of its types' (softmax over tasks = the
        probability mass of the task's types)."""
        logits = self.module_logits(self.SELECTOR, examples)
        return self.task_scores(logits) if self.type_level_selector else logits

    def task_scores(self, type_logits: torch.Tensor) -> torch.Tensor:
        offsets = self.task_offsets()
        return torch.stack([type_logits[:, o : o + len(ts)].logsumexp(-1)
                            for o, ts in zip(offsets, self.task_types, strict=True)], dim=-1)

    def route(self, examples: Sequence[Example], gold_tasks: Sequence[int] | None = None,
              sel: torch.Tensor | None = None) -> tuple[list[list[int]], torch.Tensor | None]:
        """Active experts per example, best first, and the selector logits used (None when not needed).

        With `gold_tasks` (training) and teacher forcing, the gold task's expert is always active,
        replacing the last of the top-t."""
        n = self.n_tasks
        if not self.use_selector:
            return [list(range(n)) for _ in examples], None
        t = min(self.config.top_t, n)
        forcing = gold_tasks is not None and self.config.teacher_forcing
        if forcing and t == 1 and sel is None:
            return [[int(g)] for g in gold_tasks], None  # top-1 replaced by the gold task: no selector needed
        if sel is None:
            sel = self.selector_logits(examples)
        order = torch.argsort(sel, dim=-1, descending=True)[:, :t].tolist()
        if forcing:
            for row, g in zip(order, gold_tasks, strict=True):
                if int(g) not in row:
                    row[-1] = int(g)
        return order, sel

    def concat_logits(self, examples: Sequence[Example], active: Sequence[Sequence[int]],
                      trainable: int | None = None) -> torch.Tensor:
        """[B, all seen types]: each active expert's logits in its own slots, alpha elsewhere.
        One pass per distinct active expert over just the examples that activate it."""
        n_types = len(self.types)
        offsets = self.task_offsets()
        out = torch.full((len(examples), n_types), float(self.config.alpha), device=self._device)
        for j in sorted({j for a in active for j in a}):
            rows = [i for i, a in enumerate(active) if j in a]
            lj = self.module_logits(self.expert(j), [examples[i] for i in rows], grad=(j == trainable))
            idx = torch.tensor(rows, device=self._device)
            out[idx, offsets[j] : offsets[j] + lj.shape[1]] = lj
        return out

    # --- training -------------------------------------------------------------------------------------

    def begin_step(self, task: TaskData) -> dict[str, Any]:
        state = super().begin_step(task)
        if self.has_module(self.SELECTOR):
            state["snapshots"][self.SELECTOR] = self.snapshot_module(self.SELECTOR)
        return state

    def train_step(self, task: TaskData, history: list[TaskData], rep: Reporter, stats: StepStats) -> None:
        c = self.config
        k = task.index
        seen = [*history, task]
        valid_sets = [list(t.valid) for t in seen]
        old = [list(t.train) for t in history] if c.replay else []
        task_of = self.task_of_type()
        index = self.type_index()

        sel_sampler = None
        if self.use_selector:
            # dimension expansion: one more output per task, or one per new type (type-level selector)
            grow = len(task.types) if self.type_level_selector else 1
            if not self.has_module(self.SELECTOR):
                self.add_module(self.SELECTOR, grow)
            else:
                self.pet.grow_head(self.adapter(self.SELECTOR), grow)
            self.bump_version(self.SELECTOR)
            if k > 0 or self.type_level_selector:  # one task id alone has nothing to learn
                sel_sampler = self.make_sampler("selector", task.train, old, c.iter1_limit)
        exp_sampler = self.make_sampler("expert", task.train, old, c.iter2_limit)
        n1 = len(sel_sampler) if sel_sampler is not None else 0
        # Expert batches cost about half a selector batch (old rows skipped at t = 1).
        w2 = len(exp_sampler) * (0.5 if c.top_t == 1 else 1.0)
        split = n1 / (n1 + w2) if (n1 + w2) else 0.0

        if sel_sampler is not None:
            sel_valid = self.make_validation(valid_sets, sel_sampler, "selector")

            def sel_loss(batch: list[Example]) -> tuple[torch.Tensor, dict[str, float]]:
                logits = self.module_logits(self.SELECTOR, batch, grad=True)
                gold = torch.tensor([task_of[ex.label] for ex in batch], device=logits.device)
                if self.type_level_selector:
                    gold_type = torch.tensor([index[ex.label] for ex in batch], device=logits.device)
                    acc = float((self.task_scores(logits.detach()).argmax(-1) == gold).float().mean())
                    return F.cross_entropy(logits, gold_type), {"acc": acc}
                return F.cross_entropy(logits, gold), {"acc": float((logits.argmax(-1) == gold).float().mean())}

            stage = Stage("selector", self.SELECTOR, sel_sampler, sel_loss,
                          lambda: self.selector_average_accuracy(sel_valid), c.selector_lr or c.lr)
            stats.stages.append(self.run_stage(stage, rep, 0.0, split))
            rep.check_cancel()

        name = self.expert(k)
        init = self.SELECTOR if (c.expert_init == "selector" and self.has_module(self.SELECTOR)) else None
        self.add_module(name, len(task.types), init_from=init)
        self.bump_version(name)
        exp_valid = self.make_validation(valid_sets, exp_sampler, "expert")

        def exp_loss(batch: list[Example]) -> tuple[torch.Tensor | None, dict[str, float]]:
            gold_tasks = [task_of[ex.label] for ex in batch]
            active, _ = self.route(batch, gold_tasks)
            rows = [i for i, a in enumerate(active) if k in a]
            if not rows:
                return None, {}
            sub = [batch[i] for i in rows]
            logits = self.concat_logits(sub, [active[i] for i in rows], trainable=k)
            gold = torch.tensor([index[ex.label] for ex in sub], device=logits.device)
            loss = F.cross_entropy(logits, gold, reduction="sum") / len(batch)
            return loss, {"acc": float((logits.argmax(-1) == gold).float().mean())}

        stage = Stage("expert", name, exp_sampler, exp_loss, lambda: self.average_accuracy(exp_valid), c.lr)
        stats.stages.append(self.run_stage(stage, rep, split, 1.0))

    def selector_average_accuracy(self, samples: Sequence[Sequence[Example]]) -> float:
        """Mean over tasks of the selector's routing accuracy on each task's sample. For a type-level
        selector, ties (certain at the first step, with one task) are broken by its accuracy on the types:
        the score is routing accuracy + type accuracy / 1000."""
        task_of = self.task_of_type()
        index = self.type_index()
        accs, type_accs = [], []
        for s in samples:
            if not s:
                continue
            correct = correct_type = 0
            for i in range(0, len(s), self.config.eval_batch_size):
                chunk = list(s[i : i + self.config.eval_batch_size])
                logits = self.module_logits(self.SELECTOR, chunk)
                if self.type_level_selector:
                    types = logits.argmax(-1).tolist()
                    correct_type += sum(int(p == index[ex.label]) for p, ex in zip(types, chunk, strict=True))
                    logits = self.task_scores(logits)
                pred = logits.argmax(-1).tolist()
                correct += sum(int(p == task_of[ex.label]) for p, ex in zip(pred, chunk, strict=True))
            accs.append(correct / len(s))
            type_accs.append(correct_type / len(s))
        if not accs:
            return float("nan")
        return float(np.mean(accs)) + (float(np.mean(type_accs)) / 1000 if self.type_level_selector else 0.0)

    # --- prediction ---------------------------------------------------------------------------------

    def predict(self, examples: Sequence[Example], sink: ProgressSink | None = None) -> list[Prediction]:
        """One selector pass per batch, then the examples grouped by active expert: one pass per
        expert per batch of its examples. Frozen modules' cached logits skip the backbone."""
        if not self.task_types:
            raise ConpetError("this model has not learnt any task yet")
        rep = Reporter(sink)
        order = length_order(examples)
        examples = [examples[i] for i in order]
        n, bs = len(examples), self.config.eval_batch_size
        if n == 0:
            return []
        n_types, offsets = len(self.types), self.task_offsets()
        sizes = [len(ts) for ts in self.task_types]
        sel = np.zeros((n, self.n_tasks), dtype=np.float32) if self.use_selector else None
        active: list[list[int]] = []
        for i in range(0, n, bs):
            rep.check_cancel()
            chunk = examples[i : i + bs]
            s = self.selector_logits(chunk) if self.use_selector else None
            a, _ = self.route(chunk, sel=s)
            active.extend(a)
            if sel is not None and s is not None:
                sel[i : i + len(chunk)] = s.cpu().numpy()
            if sink is not None:
                rep(0.3 * (i + len(chunk)) / n, f"selector {i + len(chunk)}/{n}", "evaluation")
        concat = np.full((n, n_types), float(self.config.alpha), dtype=np.float32)
        done, total = 0, sum(len(a) for a in active)
        for j in sorted({j for a in active for j in a}):
            rows = [i for i, a in enumerate(active) if j in a]
            for r in range(0, len(rows), bs):
                rep.check_cancel()
                part = rows[r : r + bs]
                lj = self.module_logits(self.expert(j), [examples[i] for i in part]).cpu().numpy()
                concat[part, offsets[j] : offsets[j] + sizes[j]] = lj
                done += len(part)
                if sink is not None:
                    rep(0.3 + 0.7 * done / max(total, 1), f"experts {done}/{total}", "evaluation")
        probs = softmax(concat.astype(np.float64))
        sel_probs = softmax(sel.astype(np.float64)) if sel is not None else None
        types = self.types
        task_of = self.task_of_type()
        out = []
        for i, ex in enumerate(examples):
            j = int(probs[i].argmax())
            owner = task_of[types[j]]
            own = softmax(concat[i, offsets[owner] : offsets[owner] + sizes[owner]].astype(np.float64))
            versions = {self.module_id(self.expert(e)): self.versions.get(self.expert(e), 0) for e in active[i]}
            if self.use_selector:
                versions[self.module_id(self.SELECTOR)] = self.versions.get(self.SELECTOR, 0)
            out.append(Prediction(
                ex.id, types[j], float(probs[i, j]),
                [float(x) for x in sel_probs[i]] if sel_probs is not None else None,
                list(active[i]),
                {t: float(v) for t, v in zip(self.task_types[owner], own, strict=True) if self.same_kind(t, ex)},
                versions))
        return unorder(order, out)

    def predict_batch(self, batch: list[Example]) -> list[Prediction]:
        return self.predict(batch)

    def oracle_routing_accuracy(self, examples: Sequence[Example]) -> float:
        """Accuracy if the selector always chose the gold task's expert (a diagnostic: how much of
        the error is routing). Uses the cache like prediction does."""
        task_of = self.task_of_type()
        index = self.type_index()
        order = length_order(examples)
        correct = 0
        for i in range(0, len(order), self.config.eval_batch_size):
            chunk = [examples[j] for j in order[i : i + self.config.eval_batch_size]]
            logits = self.concat_logits(chunk, [[task_of[ex.label]] for ex in chunk])
            gold = torch.tensor([index[ex.label] for ex in chunk], device=logits.device)
            correct += int((logits.argmax(-1) == gold).sum())
        return correct / len(examples) if len(examples) else float("nan")
