"""cux's provider side: the node daemon ``cux node`` that sells compute.

A node runs the adaptive-compute inference runtime, probes its capacity, prices
it, executes the jobs that consumers' leases send it and meters the compute they
spend. It arrives in later work: the package is empty now.
"""
