"""Helpers shared by the test suite: real services started on 127.0.0.1 and stopped afterwards."""
