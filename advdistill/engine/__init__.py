"""Training engine: the step, the loop, checkpoints, in-memory data."""
