"""Test-session setup.

scikit-learn's ``check_estimator`` runs its array-API check (``check_array_api_input``) only
when SciPy was imported with ``SCIPY_ARRAY_API=1``; otherwise it skips it with a warning. The
variable is read when SciPy is first imported, so it is set here, before any test module
imports SciPy; the ``check_estimator`` tests turn a skipped check's warning into an error, so
they fail if it did not take.
"""

import os
import sys

if "scipy" not in sys.modules:
    os.environ.setdefault("SCIPY_ARRAY_API", "1")
