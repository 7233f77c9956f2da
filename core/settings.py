"""One place for configuration: environment variables with the ``NATTERO_`` prefix.

Every setting has a safe default for local development. Connection details that the
local stack generates (database URL, broker passwords) are read from the stack file
``$NATTERO_STATE_DIR/stack.json`` written by ``nattero up``, unless given explicitly.
Production mode refuses the development secret.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "development-only-secret-change-me"


class BrokerAccount(BaseModel):
    username: str
    password: str


class StackInfo(BaseModel):
    """What ``nattero up`` started; written to ``stack.json`` (mode 0600)."""

    database_url: str
    mqtt_host: str
    mqtt_port: int
    broker_admin: BrokerAccount
    gateway: BrokerAccount


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="NATTERO_", extra="ignore")

    mode: Literal["development", "production"] = Field(
        "development", description="production refuses development secrets")
    state_dir: Path = Field(
        Path(".nattero"), description="data of the local stack (PostgreSQL, Mosquitto, logs)")
    pg_port: int = Field(55432, ge=1024, le=65535, description="port of the private PostgreSQL")
    mqtt_host: str = Field("127.0.0.1", description="broker host")
    mqtt_port: int = Field(51883, ge=1, le=65535, description="port of the private Mosquitto")
    database_url: str | None = Field(
        None, description="postgresql://... ; default: the local stack's")
    gateway_username: str | None = Field(None, description="broker account of the gateway")
    gateway_password: str | None = Field(None, description="its password")
    broker_admin_username: str | None = Field(
        None, description="dynamic-security admin account used for provisioning")
    broker_admin_password: str | None = None
    gateway_client_id: str = Field(
        "nattero-gateway", description="MQTT client id; the persistent session is keyed on it")
    gateway_sites: list[str] = Field(
        default_factory=list,
        description="sites whose native topics this gateway subscribes to; empty means all")
    gateway_bridges: bool = Field(True, description="also subscribe to Zigbee2MQTT/ChirpStack")
    gateway_mqtt_version: Literal["3.1.1", "5"] = Field(
        "3.1.1", description="MQTT version of the gateway's session; 3.1.1 avoids decoding "
        "MQTT 5 properties on every message (twice the throughput in paho)")
    gateway_session_expiry_s: int = Field(
        7 * 24 * 3600, ge=60, description="how long the broker keeps the gateway's queue")
    gateway_receive_maximum: int = Field(
        2000, ge=10, le=65535, description="unacknowledged messages the broker may send at once")
    ingest_batch_max: int = Field(5000, ge=1, description="most events committed in one batch")
    ingest_retry_max_s: float = Field(
        5.0, gt=0, description="longest pause between commit retries during a database outage")
    retention_days: int = Field(
        400, ge=1, description="raw events older than this many days are dropped (whole "
        "day-chunks); the rollups keep their aggregates")
    dead_letter_retention_days: int = Field(
        30, ge=1, description="dead letters older than this many days are deleted")
    maintenance: Literal["thread", "off"] = Field(
        "thread", description="whether `nattero serve`/`nattero pipeline` run the store "
        "maintenance (rollup refresh, retention) in a thread of their own, or not at all "
        "(another process runs `nattero maintenance loop`, or cron `nattero maintenance run`)")
    maintenance_every_s: float = Field(
        60.0, ge=1, description="seconds between two maintenance rounds (rollup refresh)")
    maintenance_reconcile_every_s: float = Field(
        3600.0, ge=1, description="seconds between two re-aggregations of the last 48 hours")
    secret_key: str = Field(DEV_SECRET, description="signs API tokens; required in production")
    token_minutes: int = Field(12 * 60, ge=1, description="lifetime of a bearer token")

    @model_validator(mode="after")
    def _no_dev_secret_in_production(self) -> Settings:
        if self.mode == "production" and self.secret_key == DEV_SECRET:
            raise ValueError(
                "NATTERO_SECRET_KEY is the development placeholder; set a long random value "
                "(e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`) "
                "before running in production mode")
        return self

    @property
    def stack_file(self) -> Path:
        return self.state_dir.resolve() / "stack.json"

    def stack(self) -> StackInfo | None:
        try:
            raw: Any = json.loads(self.stack_file.read_text())
        except FileNotFoundError:
            return None
        return StackInfo.model_validate(raw)

    def _require_stack(self, what: str) -> StackInfo:
        info = self.stack()
        if info is None:
            raise RuntimeError(
                f"no {what} configured and no local stack found at {self.stack_file}; "
                f"run `nattero up` first or set NATTERO_{what.upper().replace(' ', '_')}")
        return info

    def resolved_database_url(self) -> str:
        """A libpq URL (``postgresql://``) for psycopg, psql and friends."""
        url = self.database_url or self._require_stack("database url").database_url
        return url.replace("postgresql+psycopg://", "postgresql://", 1)

    def sqlalchemy_url(self) -> str:
        return self.resolved_database_url().replace("postgresql://", "postgresql+psycopg://", 1)

    def gateway_account(self) -> BrokerAccount:
        if self.gateway_username and self.gateway_password:
            return BrokerAccount(username=self.gateway_username, password=self.gateway_password)
        return self._require_stack("gateway password").gateway

    def broker_admin_account(self) -> BrokerAccount:
        if self.broker_admin_username and self.broker_admin_password:
            return BrokerAccount(
                username=self.broker_admin_username, password=self.broker_admin_password)
        return self._require_stack("broker admin password").broker_admin

    def broker_address(self) -> tuple[str, int]:
        info = self.stack()
        if info is not None and "mqtt_port" not in self.model_fields_set:
            return info.mqtt_host, info.mqtt_port
        return self.mqtt_host, self.mqtt_port


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
