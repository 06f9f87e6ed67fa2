"""The bundled local model: llama.cpp (xllamacpp) serving SmolLM2 on 127.0.0.1.

Nothing here imports Textual, and importing this package imports nothing else:

- `discovery`: is the runtime installed, where is the model, can this CPU run it (stdlib
  only, cheap enough for the setup screen);
- `server`: starts and stops the llama.cpp server in a child process;
- `serve`: that child process;
- `backend`: `LocalBackend`, the app's backend for a ``kind = "local"`` profile;
- `install`: ``foundry-tui local install`` and ``foundry-tui local status``.
"""
