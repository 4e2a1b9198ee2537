"""cux's exchange: the server around the pure matching core.

It does all the I/O the core never does: the gateway (websocket and REST), the
sequencer that stamps commands, the journal, market data, dispatch of jobs to
provider nodes, settlement, the web dashboard, and the ``cux`` command line
(``cux serve``, ``cux demo``). Today it holds the command line and a core-only
demo scenario; the server arrives in later work.
"""
