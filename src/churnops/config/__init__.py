"""The configuration: ``churnops.toml`` as validated models, and how it is loaded.

Import from here: ``from churnops.config import Config, load_config``.
"""

from churnops.config.loading import find_config, load_config
from churnops.config.models import (
    CONFIG_FILENAME,
    CSS_FILE,
    DEFAULT_REFERENCE,
    EMBEDDED_REFERENCE_ROWS,
    FALLBACK_NOTIFICATION_FILE,
    HISTORY_FILE,
    LOCK_FILE,
    METRICS_FILE,
    REPORT_FILE,
    STANDALONE_FILE,
    SUMMARY_FILE,
    TEXTFILE_NAME,
    ColumnsConfig,
    Config,
    DataConfig,
    EmailChannel,
    FileChannel,
    NotifyConfig,
    ScenarioOp,
    WebhookChannel,
)

__all__ = [
    "CONFIG_FILENAME",
    "CSS_FILE",
    "DEFAULT_REFERENCE",
    "EMBEDDED_REFERENCE_ROWS",
    "FALLBACK_NOTIFICATION_FILE",
    "HISTORY_FILE",
    "LOCK_FILE",
    "METRICS_FILE",
    "REPORT_FILE",
    "STANDALONE_FILE",
    "SUMMARY_FILE",
    "TEXTFILE_NAME",
    "ColumnsConfig",
    "Config",
    "DataConfig",
    "EmailChannel",
    "FileChannel",
    "NotifyConfig",
    "ScenarioOp",
    "WebhookChannel",
    "find_config",
    "load_config",
]
