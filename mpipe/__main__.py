"""``python -m mpipe``: the ``mpipe`` command line."""

from ._cli import main

raise SystemExit(main())
