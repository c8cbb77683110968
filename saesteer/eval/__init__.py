"""Evaluation: scorers, fluency proxies and the CAA A/B protocol."""
