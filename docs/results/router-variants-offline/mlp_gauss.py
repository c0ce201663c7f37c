"""Router variants on the dumped final-step features: LDA (today) vs an MLP trained on samples drawn from the
stored per-type Gaussians (WAVE-CRE style) vs the same MLP on the stored features themselves."""
import sys, numpy as np, torch
torch.set_num_threads(1)
d = np.load(sys.argv[1]); sizes = d["sizes"]; off = np.concatenate([[0], np.cumsum(sizes)])
def norm_blocks(f):
    bl = np.split(f.astype(np.float64), 3, axis=1)
    return np.concatenate([b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12) for b in bl], 1)
Xtr, ytr = norm_blocks(d["train_feats"]), d["train_y"]; Xte, yte = norm_blocks(d["test_feats"]), d["test_y"]
K, D = off[-1], Xtr.shape[1]
task_of = np.searchsorted(off, np.arange(K), side="right") - 1
means = np.stack([Xtr[ytr == k].mean(0) for k in range(K)])
S = sum(((Xtr[ytr == k] - means[k]).T @ (Xtr[ytr == k] - means[k])) for k in range(K)) / (len(ytr) - K)
def shrink(S, s): return (1 - s) * S + s * np.trace(S) / D * np.eye(D)
def lda_acc(s):
    P = np.linalg.inv(shrink(S, s)); W = means @ P; b = -0.5 * np.einsum("kd,kd->k", W, means)
    pred = (Xte @ W.T + b).argmax(-1); return 100*(pred == yte).mean(), 100*(task_of[pred] == task_of[yte]).mean()
print("LDA s0.1", lda_acc(0.1))
def train_mlp(X, y, hidden, epochs=60, lr=1e-3, wd=1e-4, seed=0):
    g = torch.Generator().manual_seed(seed); torch.manual_seed(seed)
    X = torch.tensor(X, dtype=torch.float32); y = torch.tensor(y)
    layers = [torch.nn.Linear(D, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, K)] if hidden else [torch.nn.Linear(D, K)]
    net = torch.nn.Sequential(*layers); opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=wd)
    for ep in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 256):
            idx = perm[i:i+256]; loss = torch.nn.functional.cross_entropy(net(X[idx]), y[idx])
            opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad(): pred = net(torch.tensor(Xte, dtype=torch.float32)).argmax(-1).numpy()
    return 100*(pred == yte).mean(), 100*(task_of[pred] == task_of[yte]).mean()
rng = np.random.default_rng(0)
for s in (0.1, 0.3):
    L = np.linalg.cholesky(shrink(S, s))
    for n_per in (100, 300):
        Xs = np.concatenate([means[k] + rng.standard_normal((n_per, D)) @ L.T for k in range(K)])
        ys = np.repeat(np.arange(K), n_per)
        for hidden in (0, 512):
            print(f"gauss s{s} n{n_per} h{hidden}", train_mlp(Xs, ys, hidden, epochs=20), flush=True)
for hidden in (0, 512):
    print(f"stored feats h{hidden}", train_mlp(Xtr, ytr, hidden), flush=True)
