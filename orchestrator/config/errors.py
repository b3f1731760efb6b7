"""The one error type for configs a user got wrong."""


class ConfigError(ValueError):
    """A config, override, component path or recipe name that cannot be used.

    The message names the file, key or value and, where there is one, the closest valid
    choice, so the CLI prints it as is (no traceback). Missing files raise
    ``FileNotFoundError`` instead, as Python code expects.
    """
