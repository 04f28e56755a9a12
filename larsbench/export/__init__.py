"""Exports of a sweep's event files to tools outside larsbench (TensorBoard)."""
