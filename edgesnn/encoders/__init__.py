"""edgesnn.encoders."""
