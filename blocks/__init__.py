"""The block library: pure-PyTorch building blocks of the classic CNN literature, assembled from plain specs.

Importing `blocks` registers every block family and head, so `BLOCKS` and `HEADS` are complete at once.
"""

from blocks import families  # noqa: F401  (registers every block family and head)
from blocks.assemble import Network, build_model
from blocks.registry import BLOCKS, HEADS, Registry, get_block, register_block

__all__ = ["BLOCKS", "HEADS", "Network", "Registry", "build_model", "get_block", "register_block"]
