"""Simulation stage: the textbook fed-batch simulator, its fault scenarios and corrupt files."""
