"""ANN-to-SNN conversion: a trained ReLU MLP becomes a core network of IF neurons.

    ann = ReluMLP.from_sklearn(clf)              # or load_ann("mlp.npz"), load_ann("m.onnx")
    conv = convert_mlp(ann, x_train[:500], percentile=99.9, steps=100)
    conv.save("model.npz")                       # Network.load runs it
    print(evaluate(ann, conv, x_test, y_test))   # ANN vs SNN accuracy per number of steps

Threshold balancing is in `edgesnn.convert.balance`, rate coding in `edgesnn.convert.snn`,
time-to-first-spike coding in `edgesnn.convert.ttfs`; `edgesnn convert` is the command.
"""

from edgesnn.convert.ann import (
    AvgPool2d,
    Conv2d,
    Dense,
    ReluCNN,
    ReluMLP,
    load_ann,
    load_npz,
    load_onnx,
)
from edgesnn.convert.balance import data_scales, model_scales
from edgesnn.convert.snn import (
    CODINGS,
    MANIFEST_KEY,
    NEURONS,
    RATE_INPUTS,
    Conversion,
    SimResult,
    Stage,
    checkpoints,
    convert_cnn,
    convert_mlp,
    encode_rate,
    evaluate,
    normalised_ann,
    rate_spec,
    simulate,
    stages,
)

__all__ = [
    "CODINGS",
    "AvgPool2d",
    "Conv2d",
    "Dense",
    "ReluCNN",
    "MANIFEST_KEY",
    "NEURONS",
    "RATE_INPUTS",
    "Conversion",
    "ReluMLP",
    "SimResult",
    "Stage",
    "checkpoints",
    "convert_cnn",
    "convert_mlp",
    "data_scales",
    "encode_rate",
    "evaluate",
    "load_ann",
    "load_npz",
    "load_onnx",
    "model_scales",
    "normalised_ann",
    "rate_spec",
    "simulate",
    "stages",
]
