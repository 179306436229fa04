"""Stages of a distillation experiment, with checkpoints, metrics, the curve plot and a summary.

A run is a sequence of stages (``baseline``, ``teacher``, ``student``); each stage trains one or
two networks for some epochs, evaluating on the eval split after every epoch and on ``test`` at
the end. Sequential distillation: the trained teacher is frozen and the student imitates it.
Iterative distillation: from the trained teacher, every epoch first trains the teacher one epoch
(ground truth + the student's soft predictions, same loss form) and then the student one epoch
(ground truth + the teacher's). Baseline and student share their initial weights and shuffling
seeds, so their difference is the distillation term alone.

Files under ``out``: ``<stage>/checkpoint.pt`` (after every epoch; ``resume=True`` continues
from it to identical weights and optimizer state), ``metrics.csv``, ``accuracy.png`` and, for the
experiment, ``summary.csv``/``summary.md``/``summary.json``. Every write publishes a whole snapshot
of ``out`` (:func:`vqa_adapters.outputs.publish`): an epoch's checkpoint, metrics and plot appear
together, and a kill leaves the previous snapshot. Progress goes through the ``progress``
and ``log`` callbacks; nothing prints here.
"""
from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from hlmrf.errors import SettingsError
from hlmrf.infra import check_output_dir
from vqa_adapters.distill.checkpoint import checkpoint_bytes, load_checkpoint
from vqa_adapters.distill.data import WithTokens, load_split, question_texts
from vqa_adapters.distill.plot import accuracy_png
from vqa_adapters.distill.settings import Settings
from vqa_adapters.distill.trainer import (RELATIONAL_FROM, TYPE_NAMES, EvalResult, epoch_seed,
                                          evaluate, make_loader, set_lr, train_epoch)
from vqa_adapters.models.factory import build_model
from vqa_adapters.outputs import check_run_folder, publish

#: What every checkpoint of a stage holds.
_KEYS = ("stage", "epoch", "history", "settings", "models", "optimizers")

__all__ = ["Runner", "StageResult", "METRIC_FIELDS"]

METRIC_FIELDS = ["stage", "network", "epoch", "lr", "pi", "train_loss", "accuracy",
                 "relational", "non_relational", "acc_type_0", "acc_type_1", "acc_type_2",
                 "acc_type_3", "acc_type_4", "acc_type_5", "seconds"]


@dataclass(frozen=True)
class StageResult:
    """A finished stage: its per-epoch rows and its test accuracy per network."""

    name: str
    history: list
    test: dict


@dataclass
class _Player:
    name: str          # "baseline" | "teacher" | "student"
    model: nn.Module
    optimizer: torch.optim.Optimizer
    partner: nn.Module | None
    seed_key: str      # baseline and student share it: same init, same shuffles


class _NullBar:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def update(self, n=1, postfix=None):
        return None


#: Settings a stage's weights do not depend on: a finished baseline or teacher stage can be reused
#: (copied into a new ``--out`` and resumed) by runs that differ only in these, e.g. a pi sweep.
_IRRELEVANT = {"baseline": ("distill", "teacher_model", "label"),
               "teacher": ("distill", "label"),
               "student": ("label",)}


def _comparable(settings: Settings, stage: str | None = None) -> dict:
    d = settings.to_dict()
    d.pop("device", None)  # a run may resume on another device
    d["train"] = {k: v for k, v in d["train"].items() if k not in ("epochs", "teacher_epochs")}
    if stage == "teacher":  # the teacher's network, however the config spells it
        d["teacher_model"] = asdict(settings.teacher)
        d.pop("model")
    for key in _IRRELEVANT.get(stage, ()):
        d.pop(key, None)
    return d


_MISSING = object()


def _same_settings(saved: dict, settings: Settings, stage: str | None) -> bool:
    """Whether a checkpoint's settings equal ``settings`` as ``stage`` sees them. A key the
    checkpoint lacks (a setting added to the code after it was written) matches when the
    current value is that setting's default, so new options do not orphan old checkpoints."""
    default = _comparable(Settings(), stage)

    def same(a, b, d) -> bool:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in set(a) | set(b):
                if k not in b:
                    return False
                dk = d.get(k, _MISSING) if isinstance(d, dict) else _MISSING
                if k not in a:
                    if dk is _MISSING or b[k] != dk:
                        return False
                elif not same(a[k], b[k], dk):
                    return False
            return True
        return a == b

    return same(saved, _comparable(settings, stage), default)


def _clone_state(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class Runner:
    """Run the stages ``settings`` asks for, writing under ``out``.

    Parameters
    ----------
    settings : the run's :class:`~vqa_adapters.distill.settings.Settings`.
    out : output directory.
    resume : continue from existing checkpoints instead of refusing to overwrite them.
    reuse : another run's folder whose finished baseline and teacher stages are copied in (and not
        trained again) when the settings those stages depend on are equal: a pi sweep or a new
        student trains only the student.
    progress : ``progress(total, desc)`` -> context manager with ``update(n, postfix=...)``.
    log : ``log(message)`` for one-line status messages.
    """

    def __init__(self, settings: Settings, out: str | Path, *, resume: bool = False,
                 reuse: str | Path | None = None,
                 progress: Callable | None = None, log: Callable[[str], None] | None = None):
        self.settings = settings
        self.out = Path(out)
        self.resume = resume
        self.reuse = Path(reuse) if reuse is not None else None
        self._reused: set[str] = set()
        self.device = self._device()
        self.progress = progress or (lambda total, desc: _NullBar())
        self.log = log or (lambda message: None)
        self.results: dict[str, StageResult] = {}
        self._data: dict[str, object] = {}
        self._raw: dict[str, object] = {}
        self._vocab = None
        self._run_json: str | None = None  # run.json's text, set when a run starts

    # ---- data -------------------------------------------------------------------------------
    def _raw_split(self, split: str):
        if split not in self._raw:
            self._raw[split] = load_split(self.settings.data, split)
        return self._raw[split]

    def dataset(self, split: str):
        if split not in self._data:
            ds = self._raw_split(split)
            if self.settings.data.question == "text":
                texts = question_texts(ds)
                ids = self.vocabulary.encode_batch([t for row in texts for t in row])
                ds = WithTokens(ds, ids.reshape(len(texts), -1, ids.shape[1]))
            self._data[split] = ds
        return self._data[split]

    @property
    def vocabulary(self):
        """The question vocabulary, built from the training split's texts (``question: text``)."""
        if self._vocab is None:
            from vqa_adapters.text import Vocabulary

            texts = question_texts(self._raw_split("train"))
            self._vocab = Vocabulary.build((t for row in texts for t in row),
                                           min_count=self.settings.data.vocab_min_count)
        return self._vocab

    # ---- stages -----------------------------------------------------------------------------
    def stages(self) -> list[str]:
        s = self.settings
        if s.experiment == "single":
            return [s.role]
        return ["baseline", "teacher", "student"]

    def run(self) -> dict[str, StageResult]:
        """Run every stage (skipping finished ones on resume); returns their results."""
        s = self.settings
        torch.set_num_threads(s.num_threads)
        if s.deterministic:
            if self.device.type == "cuda":  # cuBLAS needs this for reproducible matmuls
                import os

                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            # some CUDA kernels (cuDNN LSTM backward) have no deterministic version: warn there
            torch.use_deterministic_algorithms(True, warn_only=self.device.type == "cuda")
        check_run_folder(self.out)
        self.out = check_output_dir(self.out)  # OutputError before any training
        run = {"settings": s.to_dict(), "label": s.label}
        if s.data.question == "text":
            run["vocabulary"] = self.vocabulary.to_dict()["words"]
        # published with every epoch's snapshot, so a kill before the first epoch leaves nothing
        self._run_json = json.dumps(run, indent=2)
        if self.reuse is not None:
            self._reuse_stages()
        teacher: nn.Module | None = None
        teacher_trained = False  # the student's checkpoint is stale if its teacher trained on
        for stage in self.stages():
            if stage == "student" and teacher is None:
                teacher = self._load_teacher(Path(s.distill.teacher_checkpoint))
            path = self.out / stage / "checkpoint.pt"
            if stage == "student" and teacher_trained and path.exists():
                raise SettingsError(f"the teacher trained further on --resume, so {path} was "
                                    "distilled from an older teacher; use a fresh --out (or "
                                    "keep train.teacher_epochs fixed)")
            players = self._players(stage, teacher)
            before = load_checkpoint(path, _KEYS)["epoch"] if path.exists() else 0
            self.results[stage] = self._run_stage(stage, players)
            history = self.results[stage].history
            if stage == "teacher":
                teacher_trained = bool(history) and history[-1]["epoch"] > before
            if stage == "teacher":
                teacher = players[0].model
        if s.experiment != "single":
            self._write_summary()
        return self.results

    def _device(self) -> torch.device:
        want = self.settings.device
        if want == "auto":
            want = "cuda" if torch.cuda.is_available() else "cpu"
        if want.startswith("cuda") and not torch.cuda.is_available():
            raise SettingsError(f"device: {self.settings.device} but torch sees no CUDA GPU "
                                f"(torch {torch.__version__}); use device: cpu or auto")
        return torch.device(want)

    def _model_config(self, role: str):
        cfg = self.settings.teacher if role == "teacher" else self.settings.model
        if self.settings.data.question == "text":
            cfg = replace(cfg, question=replace(cfg.question, vocab_size=len(self.vocabulary)))
        sizes = getattr(self._raw_split("train"), "model_sizes", None)  # CLEVR: answers, objects
        return replace(cfg, **sizes) if sizes else cfg

    @property
    def type_names(self) -> tuple[str, ...]:
        """Question-type names of the data (``dataset.type_names``; Sort-of-CLEVR's by default)."""
        return tuple(getattr(self._raw_split("train"), "type_names", TYPE_NAMES))

    def _metric_fields(self) -> list[str]:
        extra = [f"acc_type_{t}" for t in range(6, len(self.type_names))]
        i = METRIC_FIELDS.index("seconds")
        return METRIC_FIELDS[:i] + extra + METRIC_FIELDS[i:]

    def _reuse_stages(self) -> None:
        src_root = self.reuse
        if not src_root.is_dir():
            raise SettingsError(f"--reuse {src_root}: not a folder (give an earlier --out)")
        for stage in self.stages():
            if stage == "student":
                continue
            src, dest = src_root / stage / "checkpoint.pt", self.out / stage / "checkpoint.pt"
            if not src.exists() or dest.exists():
                continue
            ckpt = load_checkpoint(src, _KEYS)
            why = None
            if not _same_settings(ckpt["settings"], self.settings, stage):
                why = "its settings differ"
            elif ckpt.get("test") is None or ckpt["epoch"] != self._epochs(stage):
                why = f"it is unfinished (epoch {ckpt['epoch']} of {self._epochs(stage)})"
            if why:
                self.log(f"{stage}: not reused from {src_root} ({why}); training it")
                continue
            self._publish({f"{stage}/checkpoint.pt": src.read_bytes(),
                           "run.json": self._run_json})
            self._reused.add(stage)
            self.log(f"{stage}: reused from {src_root}")

    def _new_model(self, role: str, seed_key: str) -> nn.Module:
        torch.manual_seed(epoch_seed(self.settings.seed, f"init/{seed_key}", 0))
        cfg = self._model_config(role)
        model = build_model(cfg, role).to(self.device)
        if cfg.question.glove is not None:
            self._load_glove(model, cfg)
        return model

    def _load_glove(self, model: nn.Module, cfg) -> None:
        from vqa_adapters.models.encoders import QuestionEncoder
        from vqa_adapters.text import load_glove

        if self.settings.data.question != "text":
            raise SettingsError("question.glove needs data.question: text")
        matrix, stats = load_glove(cfg.question.glove, self.vocabulary,
                                   dim=cfg.question.embed_dim,
                                   seed=epoch_seed(self.settings.seed, "glove", 0))
        for module in model.modules():
            if isinstance(module, QuestionEncoder):
                with torch.no_grad():
                    module.embedding.weight.copy_(torch.from_numpy(matrix))
        self.log(f"GloVe {cfg.question.glove}: {stats.found} of {len(self.vocabulary) - 2} words "
                 f"found, {len(stats.missing)} random ({', '.join(stats.missing[:5])})")

    def _optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        t = self.settings.train
        return torch.optim.Adam(model.parameters(), lr=t.lr_at(1), weight_decay=t.weight_decay)

    def _load_teacher(self, path: Path) -> nn.Module:
        if not path.exists():
            raise SettingsError(f"teacher checkpoint {path} does not exist; train a teacher first "
                                "(role: teacher) or run experiment: baseline+teacher+student")
        ckpt = load_checkpoint(path, ("models",))
        if not isinstance(ckpt["models"], dict) or "teacher" not in ckpt["models"]:
            raise SettingsError(f"{path} holds no teacher network; give a teacher stage's checkpoint")
        model = self._new_model("teacher", "teacher")
        try:
            model.load_state_dict(ckpt["models"]["teacher"])
        except (RuntimeError, TypeError, AttributeError) as exc:
            raise SettingsError(f"{path}: its teacher does not fit teacher_model ({str(exc)[:200]}); "
                                "give the checkpoint of a teacher trained with these settings") from None
        return model

    def _players(self, stage: str, teacher: nn.Module | None) -> list[_Player]:
        if stage == "baseline":
            m = self._new_model("baseline", "net")
            return [_Player("baseline", m, self._optimizer(m), None, "net")]
        if stage == "teacher":
            m = self._new_model("teacher", "teacher")
            return [_Player("teacher", m, self._optimizer(m), None, "teacher")]
        student = self._new_model("student", "net")
        if self.settings.distill.mode == "sequential":
            for p in teacher.parameters():
                p.requires_grad_(False)
            return [_Player("student", student, self._optimizer(student), teacher, "net")]
        for p in teacher.parameters():
            p.requires_grad_(True)
        return [_Player("teacher", teacher, self._optimizer(teacher), student, "teacher-iter"),
                _Player("student", student, self._optimizer(student), teacher, "net")]

    def _epochs(self, stage: str) -> int:
        t = self.settings.train
        return (t.teacher_epochs or t.epochs) if stage == "teacher" else t.epochs

    def _run_stage(self, stage: str, players: list[_Player]) -> StageResult:
        s = self.settings
        path = self.out / stage / "checkpoint.pt"
        history: list[dict] = []
        best: dict[str, dict] = {}
        start = 0
        epochs = self._epochs(stage)
        finished_test = None  # the test results of a stage resumed after its last epoch
        if path.exists():
            if not self.resume and stage not in self._reused:
                raise SettingsError(f"{path} exists; pass --resume to continue it or choose "
                                    "another --out")
            ckpt = load_checkpoint(path, _KEYS)
            if not _same_settings(ckpt["settings"], s, stage):
                raise SettingsError(f"{path} was written with different settings (only "
                                    "train.epochs may change on --resume)")
            for p in players:
                p.model.load_state_dict(ckpt["models"][p.name])
                p.optimizer.load_state_dict(ckpt["optimizers"][p.name])
            start, history = ckpt["epoch"], list(ckpt["history"])
            best = dict(ckpt.get("best") or {})
            if start == epochs:
                finished_test = ckpt.get("test")
            self.log(f"{stage}: resuming after epoch {start}")
        train_ds = self.dataset("train")
        eval_ds = self.dataset(s.data.eval_split)
        pi_of = s.distill.pi_schedule()
        for epoch in range(start + 1, epochs + 1):
            lr = s.train.lr_at(epoch)
            t0 = time.perf_counter()
            losses = {}
            for p in players:
                pi = pi_of(epoch) if p.partner is not None else 0.0
                torch.manual_seed(epoch_seed(s.seed, p.seed_key, epoch))
                loader = make_loader(train_ds, batch_size=s.train.batch_size, shuffle=True,
                                     seed=epoch_seed(s.seed, f"shuffle/{p.seed_key}", epoch))
                set_lr(p.optimizer, lr)
                with self.progress(len(train_ds), f"{stage}/{p.name} epoch {epoch}/{epochs}") as bar:
                    losses[p.name] = train_epoch(
                        p.model, p.optimizer, loader, partner=p.partner, pi=pi,
                        soft=s.distill.soft_loss, temperature=s.distill.temperature,
                        attention_weight=(s.distill.attention_supervision
                                          if p.name == "student" else 0.0),
                        on_batch=lambda n, loss, bar=bar: bar.update(n, postfix=f"loss {loss:.3f}"),
                        device=self.device)
            seconds = time.perf_counter() - t0
            for p in players:
                res = self._evaluate(p.model, eval_ds, f"{stage}/{p.name} eval")
                pi = pi_of(epoch) if p.partner is not None else 0.0
                history.append(self._row(stage, p.name, epoch, lr, pi, losses[p.name], res,
                                         seconds))
                if p.name not in best or res.accuracy > best[p.name]["accuracy"]:
                    best[p.name] = {"epoch": epoch, "accuracy": res.accuracy,
                                    "state": _clone_state(p.model)}
                self.log(f"{stage}/{p.name} epoch {epoch}: loss {losses[p.name]:.4f} "
                         f"{s.data.eval_split} acc {res.accuracy:.4f}")
            self.results[stage] = StageResult(stage, history, {})
            # The epoch's checkpoint, metrics and plot appear together (one folder snapshot).
            self._publish({f"{stage}/checkpoint.pt": checkpoint_bytes(
                self._payload(stage, players, epoch, history, None, best)),
                **self._metrics_files()})
        last = {p.name: _clone_state(p.model) for p in players}
        selected = {}
        for p in players:  # model selection on the eval split; test is read once, after it
            if s.train.select == "best_val" and p.name in best:
                p.model.load_state_dict(best[p.name]["state"])
                selected[p.name] = (best[p.name]["epoch"], best[p.name]["accuracy"])
            else:
                rows = [r for r in history if r["network"] == p.name]
                selected[p.name] = (rows[-1]["epoch"], rows[-1]["accuracy"]) if rows \
                    else (epochs, float("nan"))
        if finished_test is not None:
            test = finished_test
        else:
            test_ds = self.dataset("test")
            test = {}
            for p in players:
                res = asdict(self._evaluate(p.model, test_ds, f"{stage}/{p.name} test"))
                res["epoch"], res["val_accuracy"] = selected[p.name]
                test[p.name] = res
            self.results[stage] = StageResult(stage, history, test)
            payload = self._payload(stage, players, epochs, history, test, best)
            payload["models"] = last  # resuming continues from the last epoch, not the best
            self._publish({f"{stage}/checkpoint.pt": checkpoint_bytes(payload),
                           **self._metrics_files()})
        return StageResult(stage, history, test)

    def _evaluate(self, model: nn.Module, dataset, desc: str) -> EvalResult:
        loader = make_loader(dataset, batch_size=self.settings.train.eval_batch_size,
                             shuffle=False)
        with self.progress(len(dataset), desc) as bar:
            return evaluate(model, loader, on_batch=lambda n, _l: bar.update(n),
                            device=self.device,
                            relational_from=getattr(dataset, "relational_from", RELATIONAL_FROM))

    def _payload(self, stage, players, epoch, history, test, best=None) -> dict:
        return {"stage": stage, "epoch": epoch, "history": history, "test": test,
                "settings": _comparable(self.settings, stage),
                "models": {p.name: p.model.state_dict() for p in players},
                "optimizers": {p.name: p.optimizer.state_dict() for p in players},
                "best": best or {}}

    def _row(self, stage, network, epoch, lr, pi, loss, res: EvalResult, seconds) -> dict:
        row = {"stage": stage, "network": network, "epoch": epoch, "lr": lr, "pi": pi,
               "train_loss": loss, "accuracy": res.accuracy, "relational": res.relational,
               "non_relational": res.non_relational, "seconds": round(seconds, 3)}
        for t in range(max(6, len(self.type_names))):
            row[f"acc_type_{t}"] = res.per_type.get(t, float("nan"))
        return row

    # ---- files ------------------------------------------------------------------------------
    def _publish(self, files: dict) -> None:
        publish(self.out, files)

    def _metrics_files(self) -> dict:
        rows = [r for res in self.results.values() for r in res.history]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self._metric_fields())
        writer.writeheader()
        writer.writerows(rows)
        series: dict[str, list] = {}
        for r in rows:
            if r["stage"] == r["network"] or r["network"] == "student":
                series.setdefault(r["network"], []).append((r["epoch"], r["accuracy"]))
        png = accuracy_png(series, title=f"{self.settings.data.eval_split} accuracy per epoch")
        files = {"metrics.csv": buf.getvalue(), "accuracy.png": png}
        if self._run_json is not None:
            files["run.json"] = self._run_json
        return files

    def summary_rows(self) -> list[dict]:
        """Test accuracy (overall, relational, non-relational) per stage network."""
        rows = []
        for stage, res in self.results.items():
            for network, t in res.test.items():
                if stage == "student" and network == "teacher":
                    network = "teacher (after iterative)"
                elif stage != network and stage != "student":
                    continue
                per_type = {name: t["per_type"].get(k, t["per_type"].get(str(k), float("nan")))
                            for k, name in enumerate(self.type_names)}
                rows.append({"model": network, "accuracy": t["accuracy"],
                             "relational": t["relational"], "non_relational": t["non_relational"],
                             "n": t["n"], "per_type": per_type, "epoch": t.get("epoch"),
                             "val_accuracy": t.get("val_accuracy")})
        return rows

    def _write_summary(self) -> None:
        rows = self.summary_rows()
        pct = lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) \
            else f"{100 * v:.1f}"  # noqa: E731
        type_names = self.type_names
        names = " | ".join(f"{n} (%)" for n in type_names)
        lines = [f"| model | test accuracy (%) | relational (%) | non-relational (%) | {names} "
                 "| questions | epoch (selected on " + self.settings.data.eval_split + ") |",
                 "|---|---|---|---|" + "---|" * len(type_names) + "---|---|"]
        lines += [f"| {r['model']} | {pct(r['accuracy'])} | {pct(r['relational'])} | "
                  f"{pct(r['non_relational'])} | "
                  + " | ".join(pct(r["per_type"][n]) for n in type_names)
                  + f" | {r['n']} | {r['epoch']} |" for r in rows]
        text = "\n".join(lines) + "\n"
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=["model", "accuracy", "relational", "non_relational",
                                            *type_names, "n", "epoch", "val_accuracy"])
        w.writeheader()
        w.writerows([{**{k: v for k, v in r.items() if k != "per_type"}, **r["per_type"]}
                     for r in rows])
        self._publish({"summary.md": text, "summary.csv": buf.getvalue(),
                       "summary.json": json.dumps(rows, indent=2)})

    def summary_text(self) -> str:
        path = self.out / "summary.md"
        return path.read_text() if path.exists() else ""

