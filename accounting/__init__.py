"""Accounting services: read an enterprise-period from store/ once, compute with metrics/."""
