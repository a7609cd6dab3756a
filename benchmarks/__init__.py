"""Adult / COMPAS / Credit benchmarks following the MACE protocol, and peer tools side by side."""
