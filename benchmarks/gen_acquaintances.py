"""Generate simple-acquaintances-style PSL models of any size, for benchmarks.

    python benchmarks/gen_acquaintances.py N OUT_DIR [--seed 0] [--targets 0.2] [--likes 10]

Writes ``OUT_DIR/rules.psl`` (the six rules of ``examples/simple-acquaintances``) and
``OUT_DIR/facts/`` in the same file format: ``lived_obs.txt``, ``likes_obs.txt``,
``knows_obs.txt``, ``knows_targets.txt``, ``knows_truth.txt``.

The world, deterministic by ``seed`` (numpy ``default_rng``):

- ``N`` people ``0..N-1``; ``max(2, round(N/5))`` locations; ``max(2, round(N/2))`` items.
- Lived: each person lives in 1-3 locations (uniform), drawn without replacement.
- Likes: each person likes ``likes`` items (at most the number of items), values uniform in
  [0.01, 1).
- Knows: a symmetric truth per unordered pair: probability 0.85 when the two share a location,
  else 0.1 + 0.5 * (cosine similarity of their likes vectors). Every ordered pair (P1, P2),
  P1 != P2, is independently a target with probability ``targets`` (its truth goes to
  ``knows_truth.txt``), else observed with its 0/1 truth.

At N = 25 this gives a model of the bundled example's size (about 4.5k ground rules against the
example's 4,532); the transitivity rule dominates as N grows (about N^3 / 10 ground rules).
It deliberately writes files only under the directory it is given; nothing in the repository.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

RULES = """\
20: Lived(P1, L) & Lived(P2, L) & (P1 != P2) -> Knows(P1, P2) ^2
5: Lived(P1, L1) & Lived(P2, L2) & (P1 != P2) & (L1 != L2) -> !Knows(P1, P2) ^2
10: Likes(P1, L) & Likes(P2, L) & (P1 != P2) -> Knows(P1, P2) ^2
5: Knows(P1, P2) & Knows(P2, P3) & (P1 != P3) -> Knows(P1, P3) ^2
Knows(P1, P2) = Knows(P2, P1) .
5: !Knows(P1, P2) ^2
"""


def generate(n: int, seed: int = 0, targets: float = 0.2, likes: int = 10) -> dict[str, list[str]]:
    """The facts of one model as ``{file name: lines}`` (no trailing newlines)."""
    if n < 3:
        raise ValueError("need at least 3 people")
    rng = np.random.default_rng(seed)
    n_loc = max(2, round(n / 5))
    n_item = max(2, round(n / 2))
    k = min(likes, n_item)

    lived = np.zeros((n, n_loc), dtype=bool)
    for p in range(n):
        lived[p, rng.choice(n_loc, size=rng.integers(1, min(3, n_loc) + 1), replace=False)] = True
    like_val = np.zeros((n, n_item))
    for p in range(n):
        items = rng.choice(n_item, size=k, replace=False)
        like_val[p, items] = rng.uniform(0.01, 1.0, size=k)

    share = (lived.astype(np.int32) @ lived.T.astype(np.int32)) > 0
    norm = np.linalg.norm(like_val, axis=1)
    cos = (like_val @ like_val.T) / np.maximum(np.outer(norm, norm), 1e-12)
    prob = np.where(share, 0.85, 0.1 + 0.5 * cos)
    upper = np.triu(rng.random((n, n)) < prob, k=1)
    knows = upper | upper.T
    is_target = rng.random((n, n)) < targets

    files: dict[str, list[str]] = {"lived_obs.txt": [], "likes_obs.txt": [], "knows_obs.txt": [],
                                   "knows_targets.txt": [], "knows_truth.txt": []}
    for p, loc in zip(*np.nonzero(lived)):
        files["lived_obs.txt"].append(f"{p}\t{loc}")
    for p, item in zip(*np.nonzero(like_val)):
        files["likes_obs.txt"].append(f"{p}\t{item}\t{float(like_val[p, item])!r}")
    for p1 in range(n):
        for p2 in range(n):
            if p1 == p2:
                continue
            v = "1.0" if knows[p1, p2] else "0.0"
            if is_target[p1, p2]:
                files["knows_targets.txt"].append(f"{p1}\t{p2}")
                files["knows_truth.txt"].append(f"{p1}\t{p2}\t{v}")
            else:
                files["knows_obs.txt"].append(f"{p1}\t{p2}\t{v}")
    return files


def write_model(out: str | Path, n: int, seed: int = 0, targets: float = 0.2, likes: int = 10) -> Path:
    """Write ``rules.psl`` and ``facts/`` for ``n`` people under ``out``; return ``out``."""
    out = Path(out)
    facts = out / "facts"
    facts.mkdir(parents=True, exist_ok=True)
    (out / "rules.psl").write_text(RULES)
    for name, lines in generate(n, seed, targets, likes).items():
        (facts / name).write_text("".join(line + "\n" for line in lines))
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("n", type=int, help="number of people")
    p.add_argument("out", help="output directory (created); use a path under /tmp")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--targets", type=float, default=0.2, help="share of Knows pairs that are targets")
    p.add_argument("--likes", type=int, default=10, help="items each person likes")
    args = p.parse_args(argv)
    out = write_model(args.out, args.n, args.seed, args.targets, args.likes)
    counts = {f.name: sum(1 for _ in open(f)) for f in sorted((out / "facts").iterdir())}
    print(f"wrote {out}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
