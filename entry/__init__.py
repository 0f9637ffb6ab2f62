"""jan: a local, private ChatGPT alternative (``jan.host``, ``jan.sdk``, ``jan.bundled``)."""
