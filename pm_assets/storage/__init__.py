"""Where data lives: every path under the data directory, the warehouse, landing files, stored features, the model registry."""
