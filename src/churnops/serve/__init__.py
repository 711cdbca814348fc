"""The real-time monitoring service (``churnops serve``): events in, windows compared with the
reference as ``churnops monitor`` compares a batch, a durable event log."""
