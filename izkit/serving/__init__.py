"""Serving models: what izkit runs beside the method, never part of it.

- :mod:`~izkit.serving.serve`: an OpenAI-compatible server for a local model (``izkit serve``);
- :mod:`~izkit.serving.child`: the watcher process that ends a server with the process that started it;
- :mod:`~izkit.serving.remote`: a generator decoded on another server from prompt embeddings (``--generator-url``);
- :mod:`~izkit.serving.loopback`: this machine's loopback names and a free port (imports no server).

Importing this package imports none of them.
"""
