"""Collectors: device profiles, the Modbus poller, the batching writer and the plant simulator."""
