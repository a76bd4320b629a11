"""``python -m auditseal``."""

from auditseal.cli.main import entry_point

entry_point()
