"""The bundled extensions, shipped as package data of ``jan.bundled``.

Each folder holds an ``extension.toml``; the host imports them with its own loader (folder names
may have hyphens), so this package only marks where they are for ``importlib.resources``.
"""
