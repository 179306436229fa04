"""Child process of the kill and concurrency tests: publish whole numbered sets to DEST.

usage: python _committer.py DEST TAG N_FILES ROUNDS [fallback] [crash-between]
Every file of one set holds ``TAG-round``; ``fallback`` disables the atomic exchange,
``crash-between`` exits hard between the two renames of the fallback.
"""
import os
import sys

from hlmrf.infra import publish

dest, tag, n, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
flags = set(sys.argv[5:])
if "fallback" in flags:
    publish._exchange = lambda a, b: False
if "crash-between" in flags:
    publish.FileSet._between_renames = lambda self: os._exit(9)
r = 0
while rounds <= 0 or r < rounds:
    r += 1
    with publish.FileSet(dest) as fs:
        for i in range(n):
            fs.add(f"F{i:03d}.txt" if i % 2 else f"sub/F{i:03d}.txt", f"{tag}-{r}\n")
    print(r, flush=True)
