"""Dashboards as code. The Grafana datasource is provisioned from deploy/grafana/; the dashboards
themselves arrive with the dashboards issue."""
