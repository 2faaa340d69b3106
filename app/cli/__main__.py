"""``python -m app.cli``: the same as the ``labelstream`` command (the worker harness runs it so)."""

from app.cli import main

main()
