"""Choosing the classification rule's settings (``classify.SMOOTHING``, ``classify.PRIOR_MIX``)
on validation splits carved from ``train`` only: a seeded fifth of each train split (by a
hash of the id) is queried against the rest.

Scenarios: fashion in its natural mix (7 usage styles), architecture with two styles cut to
10 gallery photos, FU4 cold start (Ethnic cut to 10 gallery photos) and FU4 / ARCH10 forced
choice. For each (smoothing, prior mix): accuracy, macro-F1, ECE, answers of confidence ≥ 0.5
backed by ≤ 1 neighbour, the worst precision of a label answered ≥ 10 times; the
temperature is fitted by leave-one-out on each gallery, as an index does. It reads the
stored vectors of the all-train indexes that ``bench_trust.py --work DIR`` builds.

    .venv/bin/python benchmarks/choose_trust.py DIR
"""

import sys
import zlib

import numpy as np
from sklearn.metrics import f1_score

from stylesearch import StyleSearch

k = 10


def ece(conf, correct, bins=15):
    b = np.minimum((conf * bins).astype(int), bins - 1)
    e = 0
    for i in range(bins):
        m = b == i
        if m.any():
            e += m.mean() * abs(conf[m].mean() - correct[m].mean())
    return e


class Idx:
    def __init__(s, X, y):
        s.X = X
        s.labels = sorted(set(y))
        s.L = len(s.labels)
        li = {name: i for i, name in enumerate(s.labels)}
        s.yi = np.array([li[v] for v in y])
        s.N = np.bincount(s.yi, minlength=s.L).astype(float)
        s.pi = s.N / s.N.sum()
        s.li = li

    def ev(s, A, self_rows=None):
        S = A @ s.X.T
        if self_rows is not None:
            S[np.arange(len(A)), self_rows] = -9
        idx = np.argpartition(-S, k, axis=1)[:, :k]
        sim = np.take_along_axis(S, idx, 1)
        w = np.maximum(sim, 0) + 1e-6
        E = np.stack([(w * (s.yi[idx] == c)).sum(1) for c in range(s.L)], 1)
        C = np.stack([(s.yi[idx] == c).sum(1) for c in range(s.L)], 1)
        return E / E.sum(1, keepdims=True) * k, C

    def post(s, E, a, lam, T=1.0):
        r = (E + a) / (a + k * s.pi)
        prior = (1 - lam) * s.pi + lam / s.L
        lp = (np.log(prior) + np.log(r)) / T
        p = np.exp(lp - lp.max(1, keepdims=True))
        return p / p.sum(1, keepdims=True)

    def fitT(s, a, lam, n=2000):
        rng = np.random.default_rng(0)
        sel = rng.choice(len(s.X), min(n, len(s.X)), replace=False)
        E, _ = s.ev(s.X[sel], sel)
        t = s.yi[sel]
        best = None
        for T in np.exp(np.linspace(np.log(0.1), np.log(5), 80)):
            p = s.post(E, a, lam, T)
            nll = -np.log(p[np.arange(len(t)), t] + 1e-12).mean()
            if best is None or nll < best[0]:
                best = (nll, T)
        return best[1]


def metrics(ix, p, C, truth):
    pred = p.argmax(1)
    conf = p.max(1)
    corr = pred == truth
    sup = C[np.arange(len(pred)), pred]
    worst = min([corr[pred == c].mean() for c in range(ix.L) if (pred == c).sum() >= 10] or [1])
    return dict(
        acc=corr.mean(),
        mf1=f1_score(truth, pred, average="macro", labels=sorted(set(truth))),
        ece=ece(conf, corr),
        bad=int(((sup <= 1) & (conf >= 0.5)).sum()),
        worst=worst,
    )


def old(ix, E):
    b = E / ix.N
    return b / b.sum(1, keepdims=True)


def split(ids):  # seeded hash split: 20% validation
    return np.array([zlib.crc32(str(i).encode()) % 5 == 0 for i in ids])


def stored(index):
    with StyleSearch.open(index) as e:
        recs = e.snapshot.meta.records()
        return {
            "X": e.snapshot.backend.get(np.array([r.vid for r in recs])),
            "y": np.array([r.label or "" for r in recs]),
            "ids": np.array([r.id for r in recs]),
        }


work = sys.argv[1]
fu = stored(f"{work}/fu-all")
ar = stored(f"{work}/ar-all")
scen = {}
for name, d in (("FU", fu), ("AR", ar)):
    X, y, ids = d["X"], d["y"], d["ids"]
    v = split(ids)
    gX, gy, vX, vy = X[~v], y[~v], X[v], y[v]
    if name == "AR":  # cut two styles to 10 gallery photos
        cut = sorted(set(gy))[:2]
        keep = np.ones(len(gy), bool)
        for c in cut:
            keep[np.where(gy == c)[0][10:]] = False
        gX, gy = gX[keep], gy[keep]
    scen[name + "-natural"] = (gX, gy, vX, vy)
    if name == "FU":
        rng = np.random.default_rng(1)
        gi = []
        qi = []
        for c in ("Casual", "Sports", "Formal", "Ethnic"):
            g = np.where(gy == c)[0]
            gi += list(rng.choice(g, 10 if c == "Ethnic" else 400, replace=False))
            q = np.where(vy == c)[0]
            qi += list(rng.choice(q, min(150, len(q)), replace=False))
        scen["FU-coldstart"] = (gX[gi], gy[gi], vX[qi], vy[qi])
        gi = []
        for c in ("Casual", "Sports", "Formal", "Ethnic"):
            gi += list(rng.choice(np.where(gy == c)[0], 400, replace=False))
        scen["FU4-forced"] = (gX[gi], gy[gi], vX[qi], vy[qi])
    else:
        scen["AR-forced"] = (X[~v], y[~v], vX, vy)
grid = [(a, lam) for a in (0.5, 1, 2, 4) for lam in (0, 0.25, 0.5, 0.75, 1)]
res = {}
for sname, (gX, gy, vX, vy) in scen.items():
    ix = Idx(gX, gy)
    truth = np.array([ix.li[v] for v in vy])
    E, C = ix.ev(vX)
    m = metrics(ix, old(ix, E), C, truth)
    print(f"{sname:14s} old-balanced " + " ".join(f"{k2} {v2:.3f}" for k2, v2 in m.items()))
    for a, lam in grid:
        T = ix.fitT(a, lam)
        m = metrics(ix, ix.post(E, a, lam, T), C, truth)
        if "cold" in sname:
            m["ethnic_recall"] = (ix.post(E, a, lam, T).argmax(1)[truth == ix.li["Ethnic"]] == ix.li["Ethnic"]).mean()
        res.setdefault((a, lam), {})[sname] = m
        print(f"{sname:14s} a={a} lam={lam} T={T:.2f} " + " ".join(f"{k2} {v2:.3f}" for k2, v2 in m.items()))
