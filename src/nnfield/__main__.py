"""``python -m nnfield`` is the same as the ``nnfield`` console script."""

import sys

from nnfield.cli import main

sys.exit(main())
