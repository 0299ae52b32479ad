"""Offline evaluation: protocols, metrics, baselines and reports."""
