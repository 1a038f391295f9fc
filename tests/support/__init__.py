"""Test support: a real gateway on 127.0.0.1, run in a background thread."""
