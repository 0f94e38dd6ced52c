"""One BLAS thread for the small scikit-learn fits (probes and probe directions).

lbfgs on one layer's [800, 896] residuals is a chain of small matrix-vector products. On this project's
2-core machine two OpenBLAS threads made each such fit about 15x slower than one (1.9 s against 0.12 s,
`python benchmarks/probe_threads.py`), and a SVEN cell's probe stage took 16 minutes instead of about one.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def one_blas_thread() -> threadpool_limits:
    """A context manager: the enclosed numpy/scipy/scikit-learn calls use one BLAS thread, restored after."""
    return threadpool_limits(1, user_api="blas")
