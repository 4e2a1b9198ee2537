"""``python -m exchange``: the same as the ``cux`` command."""

from exchange.cli import main

raise SystemExit(main())
