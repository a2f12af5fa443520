"""`python -m mt` — same as the `mt` command (also what torchrun launches)."""

import sys

from mt.cli import main

sys.exit(main())
