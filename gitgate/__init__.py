"""gitgate: a GitOps-native manual approval gate for Flagger canaries."""

__version__ = "0.1.0"
