import sys, numpy as np
d = np.load(sys.argv[1]); sizes = d["sizes"]; n_t = len(sizes)
off = np.concatenate([[0], np.cumsum(sizes)])
def lse(x): m = x.max(-1, keepdims=True); return (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))[..., 0]
lp, y, gt = d["test_lp"], d["test_y"], d["test_task"]
E = [d[f"test_e{j}"].astype(np.float64) for j in range(n_t)]
rng = np.random.default_rng(0); idx = rng.permutation(len(y)); A, B = idx[: len(y) // 2], idx[len(y) // 2:]
def run(stat_rows, eval_rows, t, lam, w=1.0, kind="lse"):
    en = [lse(e) if kind == "lse" else e.max(-1) for e in E]
    st = [(en[j][stat_rows][gt[stat_rows] == j].mean(), en[j][stat_rows][gt[stat_rows] == j].std()) for j in range(n_t)]
    ts = np.stack([lse(lp[:, off[j]:off[j+1]]) for j in range(n_t)], -1)
    order = np.argsort(-ts, -1)[:, :t]
    comb = np.full(lp.shape, -np.inf)
    for i in eval_rows:
        for j in order[i]:
            ls = E[j][i] - lse(E[j][i:i+1])[0]
            comb[i, off[j]:off[j+1]] = lp[i, off[j]:off[j+1]] + w * ls + lam * (en[j][i] - st[j][0]) / st[j][1]
    pred = comb[eval_rows].argmax(-1)
    tp = np.searchsorted(off, pred, side="right") - 1
    return round(100 * (pred == y[eval_rows]).mean(), 2), round(100 * (tp == gt[eval_rows]).mean(), 2)
for t in (1, 2, 3):
    for lam in (0, 0.5, 1, 2, 4, 8):
        for kind in ("lse", "max"):
            print(t, lam, kind, "evalB", run(A, B, t, lam, kind=kind), "evalA", run(B, A, t, lam, kind=kind))
print("--- tempered router")
lp0 = lp.copy()
for T in (1, 3, 10, 30):
    lp = lp0 / T
    for lam, w in ((0, 1), (2, 1), (4, 1), (1, 1), (0.5, 1), (2, 3)):
        print("T", T, "t3 lam", lam, "w", w, run(A, B, 3, lam, w=w, kind="max"), run(B, A, 3, lam, w=w, kind="max"))
