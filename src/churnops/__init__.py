"""churnops: drift monitoring and an MLOps pipeline for tabular models, starting with bank churn."""

__version__ = "0.1.0"
