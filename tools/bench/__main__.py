import sys

from tools.bench.driver import main

sys.exit(main())
