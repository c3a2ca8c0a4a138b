"""Named network builders (see edgesnn.core.builders): ready-made networks for pipelines."""
