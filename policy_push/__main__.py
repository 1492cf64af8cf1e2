import sys

from policy_push.cli import main

sys.exit(main())
