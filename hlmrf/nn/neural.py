"""Neural predicates: torch modules whose outputs are the values of a predicate's atoms.

A :class:`NeuralPredicate` wraps a module that maps an entity's features to the values of
``predicate(entity, class)`` for each class (a classifier's softmax as ``Digit(Img, D)``), or to
the value of ``predicate(entity)`` for a unary predicate. :class:`NeuralPSL` puts such modules in
front of a :class:`~hlmrf.nn.layer.PSLLayer` whose inputs are those atoms: it runs each module
once over the features of every entity of the template, places the outputs in the layer's input
columns and solves, so a loss on the MAP state (or on the energy) trains the modules end to end.
It does not choose the loss, batch data or own an optimiser: that is the caller's training loop.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from hlmrf.errors import DataError, require
from hlmrf.nn.layer import PSLLayer

torch = require("torch", "torch")
nn = torch.nn

__all__ = ["NeuralPredicate", "NeuralPSL"]


class NeuralPredicate(nn.Module):
    """A module whose outputs are the values of one predicate's atoms.

    Parameters
    ----------
    predicate : an input predicate of the layer, ``P(entity, class)`` or ``P(entity)``.
    module : maps a batch of one entity's features ``(batch, ...)`` to ``(batch, len(classes))``
        values in [0, 1] (end it with a softmax or a sigmoid), or to ``(batch,)`` / ``(batch, 1)``
        for a unary predicate.
    classes : the constants of the class argument, in the order of the module's output columns;
        ``None`` for a unary predicate.
    """

    def __init__(self, predicate: str, module: nn.Module, classes: Sequence | None = None):
        super().__init__()
        self.predicate = predicate
        self.module = module
        self.classes = None if classes is None else tuple(str(c) for c in classes)

    def forward(self, features):
        out = self.module(features)
        return out.reshape(out.shape[0], -1)


class NeuralPSL(nn.Module):
    """Neural predicates in front of a :class:`~hlmrf.nn.layer.PSLLayer`.

    Parameters
    ----------
    layer : the layer; every input atom of a neural predicate's predicate must read
        ``P(entity, class)`` with ``class`` among the predicate's classes (``P(entity)`` for a
        unary one).
    neural : the neural predicates. Input predicates that no neural predicate covers are given
        to :meth:`forward` as ``inputs``.

    Attributes
    ----------
    entities : ``{predicate: entities}``: the template constants each module is applied to, in
        the order of :meth:`neural_values`' second axis.
    """

    def __init__(self, layer: PSLLayer, neural: Sequence[NeuralPredicate]):
        super().__init__()
        self.layer = layer
        self.neural = nn.ModuleList(neural)
        self.entities: dict[str, tuple[str, ...]] = {}
        self._maps, self._preds = [], []
        for np_ in self.neural:
            if np_.predicate.upper() in {q.upper() for q in self._preds}:
                raise DataError(f"two neural predicates for {np_.predicate}")
            cols = layer.template.columns(np_.predicate, "input")
            if len(cols) == 0:
                known = sorted({p for p, _ in layer.input_atoms})
                raise DataError(f"neural predicate {np_.predicate} is not an input predicate of the "
                                f"layer (inputs: {', '.join(known)})")
            ents, ent_idx, cls_idx = [], [], []
            for j in cols:
                pred, args = layer.input_atoms[j]
                unary = np_.classes is None
                if len(args) != (1 if unary else 2):
                    raise DataError(f"neural predicate {pred} must have {'one argument (entity)' if unary else 'two arguments (entity, class)'}; "
                                    f"{pred}({', '.join(args)}) has {len(args)}")
                if not unary and args[1] not in np_.classes:
                    raise DataError(f"{pred}({', '.join(args)}): class {args[1]!r} is not among the "
                                    f"neural predicate's classes {list(np_.classes)}")
                if args[0] not in ents:
                    ents.append(args[0])
                ent_idx.append(ents.index(args[0]))
                cls_idx.append(0 if unary else np_.classes.index(args[1]))
            self.entities[pred] = tuple(ents)
            self._preds.append(pred)
            self._maps.append((np.asarray(cols), np.asarray(ent_idx), np.asarray(cls_idx)))
        self._covered = {np_.predicate.upper() for np_ in self.neural}

    def neural_values(self, features: Mapping[str, "torch.Tensor"]) -> dict[str, "torch.Tensor"]:
        """``{predicate: (batch, entities, classes)}``: each module's outputs for the entities of
        the template (``features[entity]`` is a ``(batch, ...)`` tensor)."""
        out = {}
        for np_, pred in zip(self.neural, self._preds):
            ents = self.entities[pred]
            missing = [e for e in ents if e not in features]
            if missing:
                raise DataError(f"no features given for entity/entities {missing} of {pred}")
            feats = [torch.as_tensor(features[e]) for e in ents]
            sizes = {f.shape[0] for f in feats}
            if len(sizes) > 1:
                raise DataError(f"the features of {pred}'s entities have different batch sizes {sorted(sizes)}")
            Bn = feats[0].shape[0]
            vals = np_(torch.cat(feats, dim=0))  # one pass of the module over all entities
            width = 1 if np_.classes is None else len(np_.classes)
            if vals.shape != (Bn * len(ents), width):
                raise DataError(f"the module of {pred} returned shape {tuple(vals.shape)}; expected "
                                f"({Bn * len(ents)}, {width}) for {len(ents)} entities of batch {Bn}")
            out[pred] = vals.reshape(len(ents), Bn, width).transpose(0, 1)
        return out

    def inputs(self, features: Mapping[str, "torch.Tensor"],
               inputs: Mapping[str, "torch.Tensor"] | None = None) -> "torch.Tensor":
        """The layer's input tensor ``x``: the modules' outputs in their atoms' columns, the other
        input predicates' values from ``inputs`` (``{predicate: (batch, atoms)}``)."""
        values = self.neural_values(features)
        first = next(iter(values.values()))
        Bn = first.shape[0]
        inputs = dict(inputs or {})
        x = first.new_zeros((Bn, self.layer.n_inputs))
        given = set()
        for (cols, ent, cls), (pred, v) in zip(self._maps, values.items()):
            x = x.index_copy(1, torch.as_tensor(cols, device=x.device), v[:, ent, cls])
            given.add(pred.upper())
        for name, t in inputs.items():
            if name.upper() in self._covered:
                raise DataError(f"{name} is a neural predicate; its values come from its module")
            cols = self.layer.template.columns(name, "input")
            if len(cols) == 0:
                raise DataError(f"{name} is not an input predicate of the layer")
            t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
            if t.shape != (Bn, len(cols)):
                raise DataError(f"values of {name} must have shape ({Bn}, {len(cols)}), got {tuple(t.shape)}")
            x = x.index_copy(1, torch.as_tensor(cols, device=x.device), t)
            given.add(name.upper())
        missing = sorted({p for p, _ in self.layer.input_atoms if p.upper() not in given})
        if missing:
            raise DataError(f"no values for the input predicate(s) {', '.join(missing)}: pass them as inputs=")
        return x

    def forward(self, features: Mapping[str, "torch.Tensor"],
                inputs: Mapping[str, "torch.Tensor"] | None = None) -> "torch.Tensor":
        """The MAP values of the targets ``(batch, targets)`` for the entities' ``features``."""
        return self.layer(self.inputs(features, inputs))
