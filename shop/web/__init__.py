"""The shop's HTTP side: the Flask app factory (`shop.web.app`), its blueprints (pages, JSON API,
admin, health, metrics, the live order feed, the API's description), forms, templates and static
files, and gunicorn's hooks.

It depends on the shop's own logic (`shop.catalog`, `shop.checkout`, `shop.cancel`,
`shop.validation`, `shop.readmodel`, ...), never the reverse: the shop's worker loads that logic
and no Flask (an import-linter `layers` contract in pyproject.toml).
"""
