"""Reporters: turn the plain data that tools collect into terminal text or JSON. They never
touch the kernel."""
