import sys, numpy as np
d = np.load(sys.argv[1]); sizes = d["sizes"]; off = np.concatenate([[0], np.cumsum(sizes)])
def nb(f):
    bl = np.split(f.astype(np.float64), 3, axis=1)
    return np.concatenate([b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12) for b in bl], 1)
Xtr, ytr, Xte, yte = nb(d["train_feats"]), d["train_y"], nb(d["test_feats"]), d["test_y"]
K, D = off[-1], Xtr.shape[1]; task_of = np.searchsorted(off, np.arange(K), side="right") - 1
def lda(Xtr, Xte, s=0.1):
    D = Xtr.shape[1]
    means = np.stack([Xtr[ytr == k].mean(0) for k in range(K)])
    R = Xtr - means[ytr]; S = R.T @ R / (len(ytr) - K)
    S = (1 - s) * S + s * np.trace(S) / D * np.eye(D)
    P = np.linalg.inv(S); W = means @ P; b = -0.5 * np.einsum("kd,kd->k", W, means)
    pred = (Xte @ W.T + b).argmax(-1)
    return round(100 * (pred == yte).mean(), 2), round(100 * (task_of[pred] == task_of[yte]).mean(), 2)
print("lda", lda(Xtr, Xte))
# all-but-the-top: remove the mean and the top principal directions of the training features
mu = Xtr.mean(0); U, S_, Vt = np.linalg.svd(Xtr - mu, full_matrices=False)
for k in (1, 3, 10):
    P = Vt[:k]; f = lambda X: (X - mu) - (X - mu) @ P.T @ P
    print("abtt", k, lda(f(Xtr), f(Xte)))
# PCA to fewer dims (less estimation noise)
for k in (128, 256, 512):
    f = lambda X: (X - mu) @ Vt[:k].T
    print("pca", k, lda(f(Xtr), f(Xte)), lda(f(Xtr), f(Xte), 0.3))
# kNN cosine
Xn = Xtr / np.linalg.norm(Xtr, axis=1, keepdims=True); Tn = Xte / np.linalg.norm(Xte, axis=1, keepdims=True)
sim = Tn @ Xn.T
for k in (1, 5, 15):
    idx = np.argsort(-sim, 1)[:, :k]
    votes = np.zeros((len(yte), K))
    for j in range(k): np.add.at(votes, (np.arange(len(yte)), ytr[idx[:, j]]), 1)
    pred = votes.argmax(1)
    print("knn", k, round(100 * (pred == yte).mean(), 2), round(100 * (task_of[pred] == task_of[yte]).mean(), 2))
