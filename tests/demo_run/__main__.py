import sys

from tests.demo_run.run import main

sys.exit(main())
