"""Errors the pipeline raises; their messages are written for the person who sent the file."""


class MediaError(ValueError):
    """The file cannot be analysed: empty, not an image/video, corrupt, too large, and so on."""


class MissingWeightsError(FileNotFoundError):
    """A weight file the model needs is absent or does not match its expected SHA-256."""
