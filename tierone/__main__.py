import sys

from tierone.cli import main

sys.exit(main())
