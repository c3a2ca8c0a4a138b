"""edgesnn.sinks."""
