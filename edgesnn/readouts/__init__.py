"""edgesnn.readouts."""
