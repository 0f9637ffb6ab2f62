"""An example third-party extension (see extension.toml and main.py)."""
