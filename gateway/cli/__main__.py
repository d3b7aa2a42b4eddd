"""``python -m gateway.cli``: the ``pointsnet`` command line."""

from gateway.cli import app

app()
