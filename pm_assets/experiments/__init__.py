"""Research harnesses behind `pm replay --quarters`, `pm benchmark cmapss` and `pm evaluate-policy`: they measure the
platform (models on C-MAPSS, the self-healing loop over quarters, maintenance policies side by side) and are never
on the path of a daily run, a training or a request."""
