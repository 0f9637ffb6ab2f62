"""jan.host: the thin runtime that loads extensions and serves their API."""

__version__ = "0.1.0"
HOST_API_VERSION = "0.1.0"
