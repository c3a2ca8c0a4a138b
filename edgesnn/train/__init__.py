"""Offline supervised training of feedforward SNNs with surrogate gradients (numpy + numba).

Backpropagation through time over the core's own update equations (`edgesnn.train.kernels`),
so a model saved by `FeedforwardSNN.save` (a `Network.save` model file) runs in the core and in
a pipeline (``[networks.x] type = "snn"``, ``model = "file.npz"``) with the spikes it had in
training::

    ds = SpikeDataset.load("train.npz")            # format: edgesnn.train.data
    tr, va = ds.split(0.2)
    result = train(tr, va, TrainConfig(hidden=[128], epochs=20))
    result.model.save("model.npz")

`edgesnn train` is the command-line front end.
"""

from edgesnn.train.data import DATASET_FORMAT, SpikeDataset
from edgesnn.train.model import TRAINABLE_MODELS, FeedforwardSNN, LayerDef
from edgesnn.train.trainer import (
    Adam,
    Evaluation,
    TrainConfig,
    TrainResult,
    core_agreement,
    evaluate,
    loss_and_grads,
    make_batch,
    predict,
    train,
)

__all__ = [
    "DATASET_FORMAT",
    "TRAINABLE_MODELS",
    "Adam",
    "Evaluation",
    "FeedforwardSNN",
    "LayerDef",
    "SpikeDataset",
    "TrainConfig",
    "TrainResult",
    "core_agreement",
    "evaluate",
    "loss_and_grads",
    "make_batch",
    "predict",
    "train",
]
