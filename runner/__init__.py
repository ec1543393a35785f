"""runner: the batch evaluation runner for Fetch Hive prompt deployments."""

__version__ = "0.1.0"
