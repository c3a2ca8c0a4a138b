"""edgesnn.runtime."""
