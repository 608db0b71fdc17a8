import sys

from patchmgr.cli import main

sys.exit(main())
