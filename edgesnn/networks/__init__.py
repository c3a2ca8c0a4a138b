"""edgesnn.networks."""
