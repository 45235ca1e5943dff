"""A surrogate benchmark of a trained space: architectures trained once at the space's calibrated search
fidelity (`python -m nas.surrogate build`), kept in conf/surrogate/<space>-<data>.json, so that samplers and
schedulers can be compared on the space users search over many seeds in minutes.

- nas.surrogate.build: which architectures (the space's textbook networks, then random draws that meet its
  constraints, a second seed for some) and their training, split between processes, resumable;
- nas.surrogate.__main__: the command.
"""

from nas.surrogate.build import architectures, data_file

__all__ = ["architectures", "data_file"]
