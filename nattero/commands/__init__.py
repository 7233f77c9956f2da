"""The verbs of ``nattero``, one module per subject; ``nattero.cli`` registers them.

All Typer code of the project lives here: the lower packages expose plain functions. Each
verb imports what it needs (store, broker client, API, evaluation) inside its body, so that
``nattero --help`` stays fast.

    stack        up, down, status, migrate
    sites        site, room, device and bridge verbs (add, list, apply, basis, revoke)
    users        user add, user list
    services     serve, gateway, pipeline, maintenance run, demo
    simulation   simulate
    evaluation   export, report
"""
