"""``python -m mpipe``: the ``mpipe`` command line."""

from ._cli._main import main

raise SystemExit(main())
