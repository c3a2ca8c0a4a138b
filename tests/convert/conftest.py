"""The digits MLP shared by the conversion tests."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from edgesnn.convert import ReluMLP


@pytest.fixture(scope="session")
def digits() -> tuple[ReluMLP, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A 64-48-10 ReLU MLP trained on a stratified 70 % of the digits (seed 0), and the rest."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    d = load_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(d.data / 16.0, d.target, test_size=0.3,
                                              stratify=d.target, random_state=0)
    clf = MLPClassifier((48,), activation="relu", max_iter=150, random_state=0, tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(x_tr, y_tr)
    return ReluMLP.from_sklearn(clf), x_tr, y_tr, x_te, y_te
