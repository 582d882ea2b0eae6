"""bpfsight: eBPF performance analysis for Linux."""
__version__ = "0.1.0"
