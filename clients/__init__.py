"""cux's client side: the async Python SDK for traders and consumers.

It will hold the SDK, a local mirror of the order book, the client commands
(``cux trade``, ``cux book``, ``cux job``) and simulated consumer agents, and it
never imports `providers`, so a trader never installs the model runtime. It
arrives in later work: the package is empty now.
"""
