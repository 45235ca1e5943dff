"""Importing this package registers every block family and head."""

from blocks import heads, pooling  # noqa: F401
from blocks.families import plain  # noqa: F401
from blocks.families import stems  # noqa: F401
from blocks.families import mobile, resnet, squeeze  # noqa: F401
from blocks.families import classic, dense, enet, fractal, inception  # noqa: F401
