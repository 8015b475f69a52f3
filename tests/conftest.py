"""Setup shared by the tests.

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


def local_dask_client(n_workers: int):
    """A ``distributed.Client`` on a loopback LocalCluster of ``n_workers`` worker processes
    (one thread each, under a nanny that restarts a killed worker): a generator for
    module-scoped fixtures, which closes the cluster at the end."""
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        worker_class=distributed.Nanny,
    )
    with distributed.Client(cluster) as client:
        yield client
    cluster.close()
