"""The night board, login, hand-over, admin and evaluator pages (HTML, ES modules, CSS).

Nothing here is Python but this file: it makes the folder a package so that a wheel ships
the pages as package data and ``api.app`` finds them with ``importlib.resources``, in a
checkout and in an installed wheel alike. ``node_modules/`` (test tools) is never shipped.
"""
