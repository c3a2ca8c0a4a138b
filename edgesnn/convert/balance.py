"""Threshold balancing: one scale per layer so that spiking rates stay within one per step.

An IF neuron with threshold 1 fires at most once a step, so layer l of the ANN is divided by
a scale ``lambda_l`` that its activations rarely exceed:

- data-based (Diehl et al. 2015, "max-norm"; Rueckauer et al. 2017, "robust"): ``lambda_l``
  is the `percentile` of layer l's positive activations on a sample of training inputs
  (100 is the maximum; 99.9 or 99.99 ignores rare outliers and gives higher rates);
- model-based (Diehl et al. 2015), without data: the largest input a neuron can receive when
  every input lies in [0, 1]: ``u_l,j = sum_i max(W_ij, 0) u_{l-1,i} + max(b_j, 0)`` with
  ``u_0 = 1``, ``lambda_l = max_j u_l,j``; safe but conservative (low rates, more steps).

The converted layer has weights ``W_l * lambda_{l-1} / lambda_l`` and bias ``b_l / lambda_l``
(``lambda_0 = 1``: inputs are normalised to [0, 1] first), so its rate per step approximates
``relu(a_l) / lambda_l``.
"""

from __future__ import annotations

import numpy as np

from edgesnn.convert.ann import ReluCNN, ReluMLP


def data_scales(ann: ReluMLP | ReluCNN, x: np.ndarray, percentile: float = 99.9) -> list[float]:
    """Per layer (pooling layers too), the `percentile` of its positive activations on inputs
    x (n, n_in), in [0, 1] after normalisation; a layer that is never positive gets 1."""
    if not 0.0 < percentile <= 100.0:
        raise ValueError(f"percentile {percentile} is outside (0, 100]")
    scales = []
    for a in ann.activations(x):
        pos = a[a > 0]
        scales.append(float(np.percentile(pos, percentile)) if pos.size else 1.0)
    return scales


def model_scales(ann: ReluMLP) -> list[float]:
    """Per layer, the largest activation any input in [0, 1]^n can produce (an upper bound)."""
    u = np.ones(ann.n_inputs)
    scales = []
    for w, b in zip(ann.weights, ann.biases, strict=True):
        u = np.maximum(w, 0.0).T @ u + np.maximum(b, 0.0)
        top = float(u.max()) if u.size else 0.0
        scales.append(top if top > 0 else 1.0)
    return scales
