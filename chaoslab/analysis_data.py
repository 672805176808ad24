"""The old import path of `chaoslab.analysis.integrity`, kept so existing imports work.

`chaoslab.analysis_data` is that very module (the same object, private names and all), not
a copy: new code imports `chaoslab.analysis` (or `chaoslab.analysis.integrity`).
"""

import sys

from chaoslab.analysis import integrity

sys.modules[__name__] = integrity
