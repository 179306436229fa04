"""PSL as a differentiable torch layer, and neural predicates trained through MAP inference.

:class:`PSLLayer` turns rules and a template of facts into a ``torch.nn.Module`` whose inputs are
the values of chosen observed atoms and whose output is the MAP state of the targets (solved by
the batched torch ADMM, differentiated implicitly at the solution); :class:`NeuralPredicate`
attaches a torch module whose outputs are the values of a predicate's atoms. Importing
``hlmrf`` does not import this package (it needs torch: ``pip install "hlmrf[torch]"``).
"""
from hlmrf.nn.layer import PSLLayer, default_settings
from hlmrf.nn.neural import NeuralPredicate, NeuralPSL
from hlmrf.nn.template import Template, ground_template, template_from_model

__all__ = ["NeuralPSL", "NeuralPredicate", "PSLLayer", "Template", "default_settings",
           "ground_template", "template_from_model"]
