"""``python -m numpynn``: the same as the ``numpynn`` command."""

import sys

from .cli import main

sys.exit(main())
