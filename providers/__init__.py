"""cux's provider side: the model runtime a node sells, and its metering.

A node serves all-MiniLM-L6-v2 with a variable depth per input and bills what
each input actually ran. The runtime is here; the daemon ``cux node`` that
registers, quotes and runs jobs arrives in later work.

- :mod:`providers.metering`: the integer FLOPs formula and budget shares (pure).
- :mod:`providers.tiers`: the quality tiers (pure).
- :mod:`providers.jobs`: a job's plan and report, and batch planning (pure).
- :mod:`providers.model`: the model, loaded offline, run layer by layer (torch).
- :mod:`providers.runtime`: running a job: bucketing, exits, the report (torch).
- :mod:`providers.probe` and :mod:`providers.profile`: the probe set and the
  quality profile, ``python -m providers.profile`` (torch to measure only).

The pure modules import no torch, so the exchange and the SDK can use them;
importing this package imports nothing heavy.
"""
