"""churnops: drift monitoring and an MLOps pipeline for tabular models, starting with bank churn.

From Python::

    import churnops

    result = churnops.monitor(reference_df, batch_df, target="churned")
    print(result.verdict.headline)
    result.raise_for_drift()

`monitor`, `profile`, `load_profile`, `generate`, `load_config`,
`config_from_evidently`, `version_batch`, `MonitorResult`, `Profile`
and `DriftDetected` are the public interface; every other module is internal. Importing
the package stays cheap: the work (and its imports) happens when you call.
"""

# the monitoring layer's package is loaded first, so that the name ``monitor`` is the function
from churnops import monitor as _monitor_layer  # noqa: F401
from churnops._version import __version__
from churnops.api import (
    ChurnopsNotice,
    DriftDetected,
    MonitorResult,
    Profile,
    config_from_evidently,
    generate,
    load_config,
    load_profile,
    monitor,
    profile,
    version_batch,
)

__all__ = [
    "ChurnopsNotice",
    "DriftDetected",
    "MonitorResult",
    "Profile",
    "__version__",
    "config_from_evidently",
    "generate",
    "load_config",
    "load_profile",
    "monitor",
    "profile",
    "version_batch",
]
