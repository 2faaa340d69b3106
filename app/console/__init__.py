"""The console's pure view-model: what its pages show, computed from plain data (no Kafka, no HTTP).

The pages themselves are ``app/service/web_console.py``; static assets are in ``static/``.
"""
