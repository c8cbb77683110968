"""Command-line interface (``saesteer ...``), mirroring the Python API."""
