"""The interfaces: how people and programs reach rnnac.

`cli` is the `rnnac` command, `serve` the HTTP server with its `page.html`, `records` the
JSON records both print, and `plot` the training curves. Nothing below this package
imports it.
"""
