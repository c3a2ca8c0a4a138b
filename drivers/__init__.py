"""Sensor drivers of edgesnn, installed as the package `edgesnn_drivers`.

One module (or sub-package) per adapter. Every driver has a file-replay mode so it can run
without hardware; hardware and vendor specifics stay here, at the edge.
"""
