"""Offline: does a feature map adapted on more types route better? lda-adapted with the first m tasks merged
into one adaptation task; final LDA class accuracy and task routing over all 80 types (original tasks)."""
import sys, time, numpy as np, torch
from conpet.config import make_config
from conpet.bench import build_task_sequence
from conpet.backbones import load_backbone
from conpet.cache import MemoryLogitCache
from conpet.data.tasks import TaskData
from conpet.methods.registry import make_method
from conpet.runner import run_continual
seed = int(sys.argv[1]); m_merge = int(sys.argv[2]); data = sys.argv[3] if len(sys.argv) > 3 else "fewrel80"
extra = dict(a.split("=", 1) for a in sys.argv[4:])
torch.set_num_threads(1)
exp = make_config("quick", data=data, backbone="minilm", method="lda-adapted", seed=seed)
if data == "fewnerd":
    exp = exp.replace(max_test_per_type=50)
tasks = build_task_sequence(exp, seed)
orig_task = {t: i for i, task in enumerate(tasks) for t in task.types}
head = tasks[:m_merge]
merged = TaskData(0, sum((t.types for t in head), ()), sum((t.train for t in head), ()),
                  sum((t.valid for t in head), ()), sum((t.test for t in head), ()))
seq = [merged] + [TaskData(i + 1, t.types, t.train, t.valid, t.test) for i, t in enumerate(tasks[m_merge:])]
cfg = exp.train
for k, v in extra.items():
    cur = getattr(cfg, k)
    cfg = cfg.replace(**{k: v if cur is None or isinstance(cur, str) else type(cur)(v)})
bb = load_backbone("minilm"); torch.manual_seed(seed)
m = make_method("lda-adapted", bb, cfg, cache=MemoryLogitCache())
t0 = time.process_time()
run_continual(m, seq, evaluate_each_step=False)
cpu = time.process_time() - t0
exs = [ex for t in tasks for ex in t.test]
feats, _ = m.features(exs)
lp = m.router_log_posterior(feats)
pred = [m.types[i] for i in lp.argmax(-1)]
acc = np.mean([p == ex.label for p, ex in zip(pred, exs)])
route = np.mean([orig_task[p] == orig_task[ex.label] for p, ex in zip(pred, exs)])
old = [ex for t in tasks[m_merge:] for ex in t.test]
acc_rest = np.mean([p == ex.label for p, ex in zip(pred, exs) if orig_task[ex.label] >= m_merge])
print(f"seed {seed} merge {m_merge} {extra}: class acc {100*acc:.2f} routing {100*route:.2f} "
      f"acc on unadapted tasks {100*acc_rest:.2f} cpu {cpu:.0f}s", flush=True)
