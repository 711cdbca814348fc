"""Stages of the churnops pipeline and the file work around the monitoring computation."""
