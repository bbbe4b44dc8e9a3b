"""Loads the draconf plugin for runs from a checkout.

An installed distribution registers the same plugin through its pytest11
entry point; loading it twice is an error, so this file loads it only when
that entry point is absent or plugin autoloading is off.
"""

import os
from importlib.metadata import entry_points


def _installed_plugin() -> bool:
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return any(entry.name == "draconf" for entry in entry_points(group="pytest11"))


if not _installed_plugin():
    pytest_plugins = ["fixtures.plugin"]
