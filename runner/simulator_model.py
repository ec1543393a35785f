"""Former home of the simulator's pure core, kept so old imports keep working.

Import from :mod:`runner.simulator` instead; this module re-exports its public names.
"""

from runner.simulator import *  # noqa: F403
from runner.simulator import __all__ as __all__
