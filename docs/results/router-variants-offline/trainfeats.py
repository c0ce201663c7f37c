import numpy as np, torch, time
from conpet.config import make_config
from conpet.bench import build_task_sequence
from conpet.backbones import load_backbone
from conpet.methods.registry import load_method
torch.set_num_threads(1)
exp = make_config("quick", data="fewrel80", backbone="minilm", method="dynamic-lda", seed=1)
tasks = build_task_sequence(exp, 1)
m = load_method("/work/exp/fr80-s1.npz.model", load_backbone("minilm"))
idx = m.type_index()
out = {}
for split in ("train", "valid"):
    exs = [ex for t in tasks for ex in getattr(t, split)]
    f, _ = m.features(exs)
    out[f"{split}_feats"] = f; out[f"{split}_y"] = np.array([idx[e.label] for e in exs])
    print(split, time.process_time(), flush=True)
d = dict(np.load("/work/exp/fr80-s1.npz"))
d.update(out)
np.savez("/work/exp/fr80-s1-full.npz", **d)
