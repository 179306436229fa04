"""The distillation loss against its formula computed by hand, and the pi / lr schedules."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from hlmrf.errors import SettingsError  # noqa: E402
from vqa_adapters.distill.losses import distillation_loss, soft_loss  # noqa: E402
from vqa_adapters.distill.schedules import LrWarmup, PiSchedule  # noqa: E402

S = [[2.0, 0.0, -1.0], [0.5, 0.5, 1.5]]
T = [[1.0, 3.0, 0.0], [0.0, -2.0, 2.0]]
Y = [0, 2]


def _softmax(row, temp=1.0):
    e = [math.exp(v / temp) for v in row]
    z = sum(e)
    return [v / z for v in e]


def _by_hand(pi, kind, temp=1.0):
    l1 = sum(-math.log(_softmax(s)[y]) for s, y in zip(S, Y)) / 2
    if kind == "cross_entropy":
        l2 = sum(-sum(pt * math.log(ps) for pt, ps in zip(_softmax(t, temp), _softmax(s, temp)))
                 for s, t in zip(S, T)) / 2
    else:
        l2 = sum(sum((pt - ps) ** 2 for pt, ps in zip(_softmax(t, temp), _softmax(s, temp)))
                 for s, t in zip(S, T)) / 2
    return (1 - pi) * l1 + pi * l2


@pytest.mark.parametrize("kind", ["cross_entropy", "euclidean"])
@pytest.mark.parametrize("pi", [0.0, 0.3, 0.575, 1.0])
def test_loss_equals_formula(kind, pi):
    s, t, y = torch.tensor(S, dtype=torch.float64), torch.tensor(T, dtype=torch.float64), \
        torch.tensor(Y)
    got = distillation_loss(s, y, t, pi=pi, soft=kind)
    assert float(got) == pytest.approx(_by_hand(pi, kind), rel=1e-12)


def test_temperature_and_no_gradient_to_the_teacher():
    s = torch.tensor(S, dtype=torch.float64, requires_grad=True)
    t = torch.tensor(T, dtype=torch.float64, requires_grad=True)
    got = distillation_loss(s, torch.tensor(Y), t, pi=0.4, temperature=2.0)
    l1 = sum(-math.log(_softmax(r)[y]) for r, y in zip(S, Y)) / 2
    l2 = sum(-sum(a * math.log(b) for a, b in zip(_softmax(tr, 2.0), _softmax(sr, 2.0)))
             for sr, tr in zip(S, T)) / 2
    assert float(got.detach()) == pytest.approx(0.6 * l1 + 0.4 * l2, rel=1e-12)
    got.backward()
    assert t.grad is None and s.grad is not None
    with pytest.raises(ValueError, match="soft loss"):
        soft_loss(s, t, kind="kl")


def test_pi_schedules():
    fixed = PiSchedule(pi=0.575)
    assert [fixed(t) for t in (1, 2, 10)] == [0.575] * 3
    sched = PiSchedule(pi=0.9, kind="min")
    # min(pi, 1 - pi^t): 0.1, 0.19, 0.271, ... capped at 0.9.
    assert [round(sched(t), 6) for t in (1, 2, 3)] == [0.1, 0.19, 0.271]
    assert sched(100) == 0.9
    seq = PiSchedule(pi=0.575, kind="min")
    assert seq(1) == pytest.approx(0.425) and seq(2) == 0.575
    with pytest.raises(ValueError, match="1-based"):
        sched(0)
    with pytest.raises(SettingsError):
        PiSchedule(pi=1.5)
    with pytest.raises(SettingsError):
        PiSchedule(kind="cosine")


def test_lr_warmup_doubles_up_to_max():
    w = LrWarmup(start=5e-6, max=5e-4, every=20)
    assert w(1) == 5e-6 and w(20) == 5e-6 and w(21) == 1e-5 and w(41) == 2e-5
    assert w(1000) == 5e-4
    with pytest.raises(SettingsError):
        LrWarmup(start=1e-3, max=1e-4)
