"""numpynn's version, on the ground floor so that every room can read it."""

__version__ = "0.1.0"
