"""The web edge shared by the JSON API (:mod:`api`), the Dash pages and the plain pages (:mod:`pages`).

- :mod:`web.context` — the request's database engine, clock, vault and client tag, set once per server;
- :mod:`web.session` — the session cookie, the CSRF token, the Origin check and turning a request into
  an actor (:mod:`accounts` keeps the users, roles and scopes behind them);
- :mod:`web.errors` — one mapping of :class:`gis.errors.GridError` to HTTP statuses and messages, for
  the API's JSON and for Dash callbacks.

``api`` and ``pages`` both stand on this package and never import each other.
"""
