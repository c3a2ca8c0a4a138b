"""``input``: no dynamics; its spikes are given by the caller each step."""

from __future__ import annotations

from edgesnn.core.layout import MODEL_INPUT
from edgesnn.core.neurons._base import NeuronModel

MODEL = NeuronModel("input", MODEL_INPUT, {}, (), "External spikes enter here.")
