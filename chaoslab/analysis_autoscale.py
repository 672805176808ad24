"""The old import path of `chaoslab.analysis.autoscale`, kept so existing imports work.

`chaoslab.analysis_autoscale` is that very module (the same object, private names and all), not
a copy: new code imports `chaoslab.analysis` (or `chaoslab.analysis.autoscale`).
"""

import sys

from chaoslab.analysis import autoscale

sys.modules[__name__] = autoscale
