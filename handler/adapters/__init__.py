"""Adapters: concrete infrastructure behind the handler (stores, clients)."""
