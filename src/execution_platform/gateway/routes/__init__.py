"""One module per HTTP surface; each exposes ``router``."""
