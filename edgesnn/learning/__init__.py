"""Online learning: event-driven plasticity rules, reward delivery and their run-time control.

Rules are chosen per projection by the ``plasticity`` table of the network description
(`edgesnn.learning.rules` lists the keys); they plug into the core through its registry,
`edgesnn.core.plasticity` (which imports `edgesnn.learning.rules` by name when the core first
needs its rules), and their numba kernels (`edgesnn.learning.kernels`) are called from the
core's step kernel through the dispatch generated there. Learning depends on the core; the
core never imports learning. `edgesnn.learning.control.LearningControl` switches rules on and
off, queues rewards and captures the learned state for checkpoints.
"""

import edgesnn.core  # noqa: F401  (first: the core loads the rules while it initialises)
