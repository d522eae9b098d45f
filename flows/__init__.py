"""Flows: read from store/, call metrics/, write results. Prefect scheduling arrives with the flows issue."""
