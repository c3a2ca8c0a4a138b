"""edgesnn: a streaming edge runtime for live event sensors.

Drivers read sensors, encoders turn events into spikes, a numba SNN core infers (and learns),
readouts turn output spikes into detections, and sinks publish them (ZeroMQ, files, stdout).
"""

from edgesnn.events import Detection, EventBatch, SpikeRaster

__version__ = "0.1.0"
__all__ = ["Detection", "EventBatch", "SpikeRaster", "__version__"]
