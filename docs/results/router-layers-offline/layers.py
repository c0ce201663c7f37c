"""Offline: LDA over marker/[MASK] states of several layers of the adapted-once map (same single pass)."""
import sys, time, itertools, numpy as np, torch
from conpet.config import make_config
from conpet.bench import build_task_sequence
from conpet.backbones import load_backbone
from conpet.cache import MemoryLogitCache
from conpet.methods.registry import make_method
from conpet.runner import run_continual
from conpet.modules import read_representation
from conpet.router import GaussianRouter
seed = int(sys.argv[1]); data = sys.argv[2] if len(sys.argv) > 2 else "fewrel80"; fmap = sys.argv[3] if len(sys.argv) > 3 else "first-task"
torch.set_num_threads(1)
exp = make_config("quick", data=data, backbone="minilm", method="lda-adapted", seed=seed)
if data == "fewnerd":
    exp = exp.replace(max_test_per_type=50)
tasks = build_task_sequence(exp, seed)
orig_task = {t: i for i, task in enumerate(tasks) for t in task.types}
bb = load_backbone("minilm"); torch.manual_seed(seed)
m = make_method("lda-adapted", bb, exp.train.replace(router_features=fmap), cache=MemoryLogitCache())
run_continual(m, tasks[:1], evaluate_each_step=False)
pet = m.pet
def all_layers(exs):
    out = []
    for i in range(0, len(exs), 64):
        batch = m.encode(exs[i:i+64]).to(bb.device)
        with torch.no_grad(), pet._shared.lock:
            if m.feature_map:
                pet._shared.activate(pet._adapter(m.feature_map))
                model = pet._shared.model
                o = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True)
            else:
                o = bb.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, output_hidden_states=True)
        hs = o.hidden_states
        out.append(torch.stack([read_representation(h, batch, "markers") for h in hs], 1).numpy())
    return np.concatenate(out)
t0 = time.process_time()
tr = [ex for t in tasks for ex in t.train]; te = [ex for t in tasks for ex in t.test]
Ftr = all_layers(tr); Fte = all_layers(te); print("features", Ftr.shape, Fte.shape, time.process_time() - t0, flush=True)
H = bb.hidden_size
def norm(F):
    F = F.reshape(len(F), -1, H).astype(np.float64)
    return F / np.maximum(np.linalg.norm(F, axis=-1, keepdims=True), 1e-12)
Ntr, Nte = norm(Ftr), norm(Fte)  # [N, L*3, H]
L = Ftr.shape[1]
ytr = [ex.label for ex in tr]
def evaluate(layers, shrink=0.1, positions=(0, 1, 2)):
    idx = [l * 3 + p for l in layers for p in positions]
    X = Ntr[:, idx].reshape(len(Ntr), -1); Y = Nte[:, idx].reshape(len(Nte), -1)
    r = GaussianRouter(X.shape[1], shrink); r.update(X, ytr)
    lp = r.log_posterior(Y); pred = [r.types[i] for i in lp.argmax(-1)]
    acc = np.mean([p == ex.label for p, ex in zip(pred, te)]); route = np.mean([orig_task[p] == orig_task[ex.label] for p, ex in zip(pred, te)])
    return 100 * acc, 100 * route
for layers in ([L-1], [L-2], [L-3], [L-1, L-2], [L-1, L-3], [L-1, L-2, L-3], [L-1, L-2, L-3, L-4], [L-1, 3], [L-1, L-2, L-3, L-4, L-5, L-6]):
    for s in (0.1, 0.3):
        a, r = evaluate(layers, s)
        print(f"{data} seed {seed} map {fmap} layers {layers} shrink {s}: class acc {a:.2f} routing {r:.2f}", flush=True)
a, r = evaluate([L-1], 0.1); print("check last layer", a, r)
