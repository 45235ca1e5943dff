"""Importing this package registers every block family and head."""

from blocks import heads, pooling  # noqa: F401
from blocks.families import (  # noqa: F401
    classic,
    dense,
    enet,
    fractal,
    inception,
    mobile,
    nb201,
    plain,
    resnet,
    squeeze,
    stems,
)
