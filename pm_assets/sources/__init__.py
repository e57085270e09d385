"""Where data comes from: the simulated fleet, the C-MAPSS and tabular loaders, validation of landing files."""
