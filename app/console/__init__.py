"""The console's pure view-model: what its pages show, computed from plain data (no Kafka, no HTTP).

The views themselves are ``app/service/console_views/`` (one module per page family); static assets are in ``static/``.
"""
