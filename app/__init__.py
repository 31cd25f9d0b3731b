"""Process Atlas: an async REST backend mapping how an organisation works."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("process-atlas")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"
