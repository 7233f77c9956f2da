"""The ground floor: Nattero's shared vocabulary and configuration.

What every other package speaks: the public contract's closed sets (event, room and device
kinds, presence, rule names, severities, alert states, outcomes), the ``Event`` type, the
night window, settings, metrics and the ``NatteroError`` base. It imports nothing of the
project, so any package may import it and it never drags in a heavy dependency.
"""
