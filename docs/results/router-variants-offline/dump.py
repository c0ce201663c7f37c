"""Offline routing experiment: train dynamic-lda on fewrel80 quick (one seed), then dump router log-posteriors
and every expert's logits on test / valid / train sets, for offline combination studies."""
import sys, time, numpy as np, torch
from conpet.config import make_config
from conpet.bench import build_task_sequence
from conpet.backbones import load_backbone
from conpet.cache import MemoryLogitCache
from conpet.methods.registry import make_method
from conpet.runner import run_continual

seed = int(sys.argv[1]); data = sys.argv[2] if len(sys.argv) > 2 else "fewrel80"; out = sys.argv[3]
torch.set_num_threads(1)
exp = make_config("quick", data=data, backbone="minilm", method="dynamic-lda", seed=seed)
tasks = build_task_sequence(exp, seed)
bb = load_backbone("minilm")
torch.manual_seed(seed)
m = make_method("dynamic-lda", bb, exp.train, cache=MemoryLogitCache())
t0 = time.process_time()
run_continual(m, tasks, evaluate_each_step=False)
print("trained", time.process_time() - t0, flush=True)
m.save(out + ".model")
res = {}
types = m.types
index = m.type_index(); task_of = m.task_of_type()
for split in ("test", "valid", "train"):
    np.savez(out, **res, sizes=np.array([len(ts) for ts in m.task_types]))
    exs = [ex for t in tasks for ex in getattr(t, split)]
    feats, _ = m.features(exs)
    lp = m.router_log_posterior(feats)
    res[f"{split}_lp"] = lp
    res[f"{split}_feats"] = feats
    res[f"{split}_y"] = np.array([index[ex.label] for ex in exs])
    res[f"{split}_task"] = np.array([task_of[ex.label] for ex in exs])
    for j in (range(m.n_tasks) if split != "train" else []):
        logits = []
        for i in range(0, len(exs), 64):
            logits.append(m.module_logits(m.expert(j), exs[i:i+64]).cpu().numpy())
        res[f"{split}_e{j}"] = np.concatenate(logits)
    print(split, "done", time.process_time() - t0, flush=True)
res["sizes"] = np.array([len(ts) for ts in m.task_types])
np.savez(out, **res)
