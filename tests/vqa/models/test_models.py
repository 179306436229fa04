"""Shapes, equivalences and mask behaviour of the VQA networks (tiny sizes, CPU)."""
from __future__ import annotations

import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")

from hlmrf.errors import DataError, SettingsError  # noqa: E402
from vqa_adapters.models import (  # noqa: E402
    AttentionRelationNetwork, ExternalMaskTeacher, ModelConfig, QuestionConfig,
    RelationNetwork, StackedAttentionNetwork, StateRelationNetwork, apply_mask, build_model)
from vqa_adapters.models.config import config_from_dict  # noqa: E402
from vqa_adapters.models.encoders import regions, reverse_tokens  # noqa: E402
from vqa_adapters.models.rn import PairwiseG  # noqa: E402

TINY = dict(conv_channels=(4, 4), g_units=(8, 8), f_units=(8,), n_answers=5, attention_dim=6,
            san_dim=8, image_size=16)
ONEHOT = QuestionConfig(kind="onehot", out_dim=6)
TOKENS = QuestionConfig(kind="tokens", vocab_size=12, embed_dim=5, out_dim=7, reverse=True)


def _question(cfg: QuestionConfig, b: int) -> torch.Tensor:
    if cfg.kind == "onehot":
        return torch.eye(11)[torch.arange(b) % 11]
    return torch.tensor([[3, 4, 5, 0], [1, 2, 0, 0], [7, 0, 0, 0]])[:b]


@pytest.mark.parametrize("kind", ["rn", "san", "rn_attention"])
@pytest.mark.parametrize("question", [ONEHOT, TOKENS], ids=["onehot", "tokens"])
@pytest.mark.parametrize("role", ["baseline", "teacher", "student"])
def test_pixel_models_shapes(kind, question, role):
    torch.manual_seed(0)
    cfg = ModelConfig(kind=kind, question=question, **TINY)
    net = build_model(cfg, role)
    img, q = torch.rand(3, 3, 16, 16), _question(question, 3)
    args = (img, q, torch.rand(3, 1, 16, 16)) if net.uses_mask else (img, q)
    out = net(*args)
    assert out.shape == (3, 5)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("question", [ONEHOT, TOKENS], ids=["onehot", "tokens"])
def test_state_description_rn_reads_objects(question):
    cfg = ModelConfig(kind="rn_state", object_dim=9, question=question, **TINY)
    net = build_model(cfg)
    assert isinstance(net, StateRelationNetwork) and net.input_key == "objects"
    assert net(torch.rand(3, 6, 9), _question(question, 3)).shape == (3, 5)
    teacher = build_model(cfg, "teacher")  # the object-mask teacher: weights appended
    assert teacher.uses_mask and teacher.input_key == "objects"
    objects, mask = torch.rand(3, 6, 9), (torch.rand(3, 6) > 0.5).float()
    q = _question(question, 3)
    assert teacher(objects, q, mask).shape == (3, 5)
    # the mask is an input: the same objects with another mask give other logits
    assert not torch.allclose(teacher(objects, q, mask), teacher(objects, q, 1 - mask))
    with pytest.raises(DataError, match="object mask must be"):
        teacher(objects, q, mask[:, :4])


def test_small_preset_on_sort_of_clevr_sized_input():
    net = build_model(ModelConfig.small())
    assert net(torch.rand(2, 3, 75, 75), torch.eye(11)[:2]).shape == (2, 10)


def test_paper_preset_constructs_and_runs_at_batch_2():
    cfg = ModelConfig.paper()
    assert cfg.conv_channels == (32, 64, 128, 256) and cfg.batch_norm
    assert cfg.g_units == (2000,) * 4 and cfg.f_units == (2000, 1000, 500, 100)
    net = build_model(cfg)
    convs = [m for m in net.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.encoder.modules()) == 4
    with torch.no_grad():
        assert net(torch.rand(2, 3, 75, 75), torch.eye(11)[:2]).shape == (2, 10)


def test_pairwise_g_equals_explicit_concatenation():
    torch.manual_seed(1)
    g = PairwiseG(object_dim=5, question_dim=3, units=(7, 4))
    o, q = torch.randn(2, 4, 5), torch.randn(2, 3)
    # Reference: the RN definition, sum_{i,j} g([o_i, o_j, q]) with an explicit loop.
    ref = torch.zeros(2, 4)
    for b in range(2):
        for i in range(4):
            for j in range(4):
                x = torch.cat([o[b, i], o[b, j], q[b]])
                h = torch.relu(g.first(x))
                ref[b] += g.rest(h)
    torch.testing.assert_close(g(o, q), ref, atol=1e-5, rtol=1e-5)


def test_regions_carry_coordinates():
    feats = torch.zeros(1, 2, 2, 3)
    r = regions(feats)
    assert r.shape == (1, 6, 4)
    assert r[0, 0, 2:].tolist() == [-1.0, -1.0] and r[0, 5, 2:].tolist() == [1.0, 1.0]


def test_reverse_tokens_keeps_padding_at_the_end():
    t = torch.tensor([[3, 4, 5, 0], [1, 2, 0, 0], [9, 8, 7, 6]])
    assert reverse_tokens(t).tolist() == [[5, 4, 3, 0], [2, 1, 0, 0], [6, 7, 8, 9]]


def test_external_mask_changes_the_teachers_input_and_passes_gradients():
    torch.manual_seed(0)
    net = RelationNetwork(ModelConfig(kind="rn", **TINY)).eval()
    teacher = ExternalMaskTeacher(net)
    img = torch.rand(2, 3, 16, 16) + 0.1
    q = torch.eye(11)[:2]
    zeros, ones = torch.zeros(2, 1, 16, 16), torch.ones(2, 1, 16, 16)
    # Ones mask: exactly the unmasked network; zero mask: the features of an all-zero image.
    torch.testing.assert_close(teacher(img, q, ones), net(img, q))
    torch.testing.assert_close(net.objects(apply_mask(img, zeros)),
                               net.objects(torch.zeros_like(img)))
    assert not torch.allclose(net.objects(apply_mask(img, zeros)), net.objects(img))
    assert not torch.allclose(teacher(img, q, zeros), teacher(img, q, ones))
    mask = torch.rand(2, 1, 16, 16, requires_grad=True)
    teacher(img, q, mask).sum().backward()
    assert mask.grad is not None and mask.grad.abs().sum() > 0
    assert all(p.grad is not None for p in teacher.parameters() if p.requires_grad)


def test_mask_is_broadcast_over_channels_and_resized():
    img = torch.ones(1, 3, 8, 8)
    m = torch.zeros(1, 1, 8, 8)
    m[..., :4] = 1
    out = apply_mask(img, m)
    assert (out[:, :, :, :4] == 1).all() and (out[:, :, :, 4:] == 0).all()
    small = torch.ones(1, 1, 4, 4)
    assert apply_mask(img, small).shape == img.shape
    torch.testing.assert_close(apply_mask(img, small), img)
    with pytest.raises(ValueError, match="mask must be"):
        apply_mask(img, torch.ones(1, 3, 8, 8))


def test_attention_teacher_formula_and_supervision():
    torch.manual_seed(0)
    cfg = ModelConfig(kind="rn_attention", attention_supervision=1.0,
                      attention_form="per_region", **TINY)
    net = AttentionRelationNetwork(cfg)
    assert net.uses_mask
    img, q = torch.rand(2, 3, 16, 16), torch.eye(11)[:2]
    net(img, q, None)
    a = net.last_attention
    objects = regions(net.encoder(img))
    qv = net.head.question(q)
    ref = torch.softmax(net.w_score(torch.tanh(net.w_image(objects)
                                               + net.w_question(qv)[:, None])).squeeze(-1), 1)
    torch.testing.assert_close(a, ref)
    torch.testing.assert_close(a.sum(1), torch.ones(2))
    loss = net.attention_loss(torch.rand(2, 1, 16, 16))
    assert loss > 0
    loss.backward()
    assert net.w_score.weight.grad.abs().sum() > 0
    assert not AttentionRelationNetwork(ModelConfig(kind="rn_attention", **TINY)).uses_mask


def test_eq6_attention_follows_the_formula():
    """Eq. 6: one logit per region from the whole flattened feature map plus the question."""
    torch.manual_seed(0)
    cfg = ModelConfig(kind="rn_attention", **TINY)
    assert cfg.attention_form == "eq6"
    net = AttentionRelationNetwork(cfg)
    img, q = torch.rand(3, 3, 16, 16), torch.eye(11)[:3]
    out = net(img, q)
    feats = net.encoder(img)                                   # (3, 4, 4, 4): R = 16 regions
    assert net.w_image.weight.shape == (16, 4 * 16)
    assert net.w_question.weight.shape == (16, net.head.question.out_dim)
    logits = feats.flatten(1) @ net.w_image.weight.T + net.w_image.bias \
        + net.head.question(q) @ net.w_question.weight.T
    a = torch.softmax(logits, 1)
    torch.testing.assert_close(net.last_attention, a)
    objects = regions(feats) * (a * 16)[..., None]
    q_vec = net.head.question(q)
    torch.testing.assert_close(out, net.head.answer(net.head.f(net.head.g(objects, q_vec))))
    with pytest.raises(ValueError, match="model.image_size"):
        net(torch.rand(1, 3, 32, 32), q[:1])


def test_attention_kl_is_the_kl_of_pooled_mask_and_attention():
    from vqa_adapters.models.rn import attention_kl

    torch.manual_seed(0)
    for kind in ("rn_attention", "san"):
        net = build_model(ModelConfig(kind=kind, **TINY), "baseline")
        img, q = torch.rand(2, 3, 16, 16), torch.eye(11)[:2]
        net(img, q)
        mask = torch.zeros(2, 1, 16, 16)
        mask[:, :, :4, :4] = 1.0                               # region (0, 0) of the 4 x 4 grid
        maps = net.last_attention if isinstance(net.last_attention, list) else [net.last_attention]
        target = torch.full((2, 16), 1e-6)
        target[:, 0] += 1.0
        target = target / target.sum(1, keepdim=True)
        expected = sum((target * (target.log() - a.log())).sum(1).mean() for a in maps) / len(maps)
        torch.testing.assert_close(attention_kl(net, mask), expected)
        # a perfect attention on the masked region has (nearly) zero loss
        assert float((target * (target.log() - target.log())).sum(1).mean()) == 0.0


def test_san_hops_follow_the_formula():
    torch.manual_seed(0)
    net = StackedAttentionNetwork(ModelConfig(kind="san", san_hops=2, **TINY))
    img, q = torch.rand(2, 3, 16, 16), torch.eye(11)[:2]
    out = net(img, q)
    assert out.shape == (2, 5) and len(net.last_attention) == 2
    v = torch.tanh(net.project_v(regions(net.encoder(img))))
    u = torch.tanh(net.project_u(net.question(q)))
    for hop, p_model in zip(net.hops, net.last_attention):
        h = torch.tanh(hop.w_v(v) + hop.w_u(u)[:, None])
        p = torch.softmax(hop.w_p(h).squeeze(-1), dim=1)
        torch.testing.assert_close(p, p_model)
        u = u + (p[..., None] * v).sum(1)
    torch.testing.assert_close(net.classifier(u), out)


def test_config_rejects_unknown_keys_and_bad_values():
    with pytest.raises(SettingsError, match="unknown model settings: bogus, other"):
        config_from_dict({"preset": "small", "bogus": 1, "other": 2})
    with pytest.raises(SettingsError, match="unknown model.question settings: nope"):
        config_from_dict({"question": {"nope": 1}})
    with pytest.raises(SettingsError, match="model.kind"):
        ModelConfig(kind="cnn")
    with pytest.raises(SettingsError, match="reverse only applies"):
        QuestionConfig(kind="onehot", reverse=True)
    cfg = config_from_dict({"preset": "paper", "g_units": [10, 10]})
    assert cfg.g_units == (10, 10) and cfg.f_units == (2000, 1000, 500, 100)


def test_importing_the_packages_does_not_import_torch():
    code = ("import sys, vqa_adapters, vqa_adapters.models, vqa_adapters.distill, "
            "vqa_adapters.distill.settings, vqa_adapters.distill.schedules; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
