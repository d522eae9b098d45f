"""The bureau HTTP API. It arrives with its own issue; nothing here yet."""
