"""`python -m bpelm ...` is the `bpelm` command."""

import sys

from bpelm.cli import main

sys.exit(main())
