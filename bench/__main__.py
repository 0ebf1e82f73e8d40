"""`python -m bench`: run every benchmark, print the tables, update docs/benchmarks.md."""

import sys

from bench.run import main

sys.exit(main())
