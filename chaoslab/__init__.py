"""chaoslab: chaos and recovery experiments for Kubernetes, measured from the client's side."""

__version__ = "0.1.0"
