"""larsbench: large-batch training with and without LARC: configure, launch, watch, compare."""

__version__ = "0.1.0"
