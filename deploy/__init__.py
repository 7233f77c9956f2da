"""Deploy: the local stack (private PostgreSQL+TimescaleDB and Mosquitto) and install files."""
