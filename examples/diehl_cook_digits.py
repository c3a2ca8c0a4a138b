"""Unsupervised digit recognition with STDP, after Diehl & Cook (2015), on scikit-learn's 8x8
handwritten digits (1 797 images; needs scikit-learn).

Poisson input (64 pixels, rate ~ intensity) -> up to 400 adaptive-threshold LIF neurons with
lateral inhibition; the input weights learn online by pair STDP (multiplicative bounds), each
neuron's threshold grows with its spikes while learning (homeostasis) and each neuron's incoming
weights keep a fixed sum (normalisation after every image). No label is used while learning:
afterwards a labelled pass over the training images assigns every neuron the digit it answers
most, and a held-out image is classified by the digit whose neurons fire most on average.

    python examples/diehl_cook_digits.py                 # 400 neurons, 3 epochs
    python examples/diehl_cook_digits.py --neurons 100 --epochs 1 --present-ms 100
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np

from edgesnn.core import Network, NetworkSpec


@dataclass
class Config:
    """Sizes and rates of the network and of the protocol (defaults: the reported run)."""

    neurons: int = 400
    epochs: int = 3
    present_ms: int = 150  # one image
    rest_ms: int = 30  # silence between images
    rate_per_ms: float = 0.15  # spike probability per ms at full intensity (150 Hz)
    gain: float = 0.1
    inhibition: float = -1.0
    theta_plus: float = 0.03
    a_plus: float = 0.02
    a_minus: float = 0.004
    norm_total: float = 6.4  # 0.1 per input, as 78 / 784 in Diehl & Cook
    min_spikes: int = 5  # fewer: present again, brighter
    eval_repeats: int = 2  # labelled pass and test: spikes summed over this many showings
    seed: int = 0
    test_size: float = 0.25
    max_train: int = 0  # 0: every training image


def build(cfg: Config) -> Network:
    """Input -> excitatory layer (adaptive thresholds, STDP) with winner-take-all inhibition."""
    rng = np.random.default_rng(cfg.seed)
    spec = NetworkSpec(dt_us=1000, seed=cfg.seed)
    spec.add_layer("in", 64, "input")
    spec.add_layer("exc", cfg.neurons, "adaptive_lif", tau_mem_ms=50.0, v_th=1.0,
                   t_ref_ms=3.0, tau_adapt_ms=1e7, theta_plus=0.0)
    spec.connect(
        "in", "exc", "dense", weight=rng.uniform(0.0, 0.2, (64, cfg.neurons)), gain=cfg.gain,
        plasticity={
            "rule": "stdp", "bounds": "multiplicative", "a_plus": cfg.a_plus,
            "a_minus": cfg.a_minus, "theta_plus": cfg.theta_plus,
            "norm_total": cfg.norm_total,
            "norm_interval_steps": cfg.present_ms + cfg.rest_ms,
        },
    )
    spec.connect("exc", "exc", "wta", weight=cfg.inhibition)
    return Network(spec)


class Presenter:
    """Shows one image as Poisson spike trains (one kernel call) and counts output spikes."""

    def __init__(self, net: Network, cfg: Config) -> None:
        self.net, self.cfg = net, cfg
        self.rng = np.random.default_rng(cfg.seed + 1)
        self.steps = cfg.present_ms + cfg.rest_ms

    def __call__(self, image: np.ndarray, learn: bool) -> np.ndarray:
        self.net.learning = learn
        counts = np.zeros(self.cfg.neurons, np.int64)
        for boost in range(4):
            p = image / 16.0 * self.cfg.rate_per_ms * (1 + boost)
            fire = self.rng.random((self.cfg.present_ms, 64)) < p
            n = fire.sum(1)
            ptr = np.zeros(self.steps + 1, np.int64)
            ptr[1 : self.cfg.present_ms + 1] = np.cumsum(n)
            ptr[self.cfg.present_ms + 1 :] = ptr[self.cfg.present_ms]
            idx = np.nonzero(fire)[1].astype(np.int32)
            counts = np.bincount(self.net.run(ptr, idx).idx, minlength=self.cfg.neurons)
            if counts.sum() >= self.cfg.min_spikes:
                break
        return counts


def run(cfg: Config, log=print) -> dict[str, float]:
    """Train, label, test; returns accuracy and timings."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=cfg.test_size, random_state=cfg.seed, stratify=y
    )
    if cfg.max_train:
        x_tr, y_tr = x_tr[: cfg.max_train], y_tr[: cfg.max_train]
    net = build(cfg)
    show = Presenter(net, cfg)
    rng = np.random.default_rng(cfg.seed + 2)
    t0 = time.perf_counter()
    for ep in range(cfg.epochs):
        order = rng.permutation(len(x_tr))
        for k, i in enumerate(order):
            show(x_tr[i], learn=True)
            if (k + 1) % 500 == 0 or k + 1 == len(order):
                log(f"epoch {ep + 1}/{cfg.epochs}: {k + 1}/{len(order)} images, "
                    f"{time.perf_counter() - t0:.1f} s")
    t_train = time.perf_counter() - t0
    def respond(im: np.ndarray) -> np.ndarray:
        return sum(show(im, learn=False) for _ in range(cfg.eval_repeats))

    responses = np.array([respond(im) for im in x_tr], dtype=np.float64)
    labels = assign_labels(responses, y_tr)
    per_digit = np.bincount(labels[labels >= 0], minlength=10).tolist()
    log(f"labelled pass: neurons per digit {per_digit}")
    predictions = np.array([classify(respond(im), labels) for im in x_te])
    acc = float(np.mean(predictions == y_te))
    return {"accuracy": acc, "train_s": t_train, "total_s": time.perf_counter() - t0,
            "n_train": len(x_tr), "n_test": len(x_te)}


def assign_labels(responses: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each neuron's digit: the class with its highest mean response (Diehl & Cook)."""
    means = np.array([responses[y == c].mean(0) if np.any(y == c) else
                      np.full(responses.shape[1], -np.inf) for c in range(10)])
    labels = means.argmax(0)
    labels[responses.sum(0) == 0] = -1  # never fired: no vote
    return labels


def classify(counts: np.ndarray, labels: np.ndarray) -> int:
    """The digit whose neurons fired most on average."""
    scores = [counts[labels == c].mean() if np.any(labels == c) else -1.0 for c in range(10)]
    return int(np.argmax(scores))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--neurons", type=int, default=Config.neurons)
    p.add_argument("--epochs", type=int, default=Config.epochs)
    p.add_argument("--present-ms", type=int, default=Config.present_ms)
    p.add_argument("--seed", type=int, default=Config.seed)
    a = p.parse_args(argv)
    if not 1 <= a.neurons <= 400:
        p.error("--neurons must be within 1..400")
    cfg = Config(neurons=a.neurons, epochs=a.epochs, present_ms=a.present_ms, seed=a.seed)
    r = run(cfg)
    print(f"held-out accuracy {r['accuracy'] * 100:.1f} % on {r['n_test']} images "
          f"({cfg.neurons} neurons, {cfg.epochs} epochs of {r['n_train']} images, "
          f"training {r['train_s']:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
