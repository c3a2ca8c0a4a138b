"""Online learning: event-driven plasticity rules, reward delivery and their run-time control.

Rules are chosen per projection by the ``plasticity`` table of the network description
(`edgesnn.learning.rules` lists the keys); their numba kernels (`edgesnn.learning.kernels`) are
called from the core's step kernel for every projection whose plasticity code is a learning
rule. `edgesnn.learning.control.LearningControl` switches rules on and off, queues rewards and
captures the learned state for checkpoints.
"""

import edgesnn.core  # noqa: F401  (the core imports the learning kernels; load it first)
