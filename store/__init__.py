"""Storage: schema migrations (ordered SQL files), connections, ingest and queries."""
