"""Config flow for the ESP32 MCP Bridge."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigFlow, ConfigFlowResult, OptionsFlow
from homeassistant.core import callback
from homeassistant.helpers import device_registry as dr, selector
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo
import voluptuous as vol

from . import migration
from .const import (
    CONF_ALL_DIAGNOSTICS,
    CONF_BASE_TOPIC,
    CONF_OFFLINE_TIMEOUT,
    CONF_TAKE_OVER,
    DEFAULT_ALL_DIAGNOSTICS,
    DEFAULT_BASE,
    DEFAULT_OFFLINE_TIMEOUT,
    DEFAULT_TAKE_OVER,
    DOMAIN,
    MAX_OFFLINE_TIMEOUT,
)
from .manager import EspMcpBridgeConfigEntry
from .protocol import ProtocolError, is_valid_base_topic, parse_capabilities
from .removal import (
    CONF_REMOVED_DEVICES,
    async_delete_issues,
    async_set_removed_devices,
    removed_devices,
)

CAPABILITIES_SUFFIX = "/capabilities"
CONF_RESTORE_DEVICES = "restore_devices"


def _title(base_topic: str) -> str:
    return f"ESP32 MCP Bridge ({base_topic})"


def _base_schema(default: str) -> vol.Schema:
    return vol.Schema({vol.Required(CONF_BASE_TOPIC, default=default): str})


class EspMcpBridgeConfigFlow(ConfigFlow, domain=DOMAIN):
    """Handle a config flow: one entry per base topic."""

    VERSION = migration.VERSION
    MINOR_VERSION = migration.MINOR_VERSION

    def __init__(self) -> None:
        """Initialise the flow."""
        self._base_topic = DEFAULT_BASE
        self._device_name = ""

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: EspMcpBridgeConfigEntry) -> OptionsFlow:
        """Return the options flow."""
        return EspMcpBridgeOptionsFlow()

    async def async_step_mqtt(self, discovery_info: MqttServiceInfo) -> ConfigFlowResult:
        """Handle a retained capabilities message found by MQTT discovery."""
        topic = discovery_info.topic
        parts = topic.rsplit("/", 2)
        if not topic.endswith(CAPABILITIES_SUFFIX) or len(parts) != 3 or not parts[0]:
            return self.async_abort(reason="invalid_discovery_info")
        base_topic, device_id = parts[0], parts[1]
        payload = discovery_info.payload
        if not payload:
            return self.async_abort(reason="invalid_discovery_info")
        try:
            caps = parse_capabilities(
                payload if isinstance(payload, str) else bytes(payload), device_id
            )
        except ProtocolError:
            return self.async_abort(reason="invalid_discovery_info")
        if not is_valid_base_topic(base_topic):
            return self.async_abort(reason="invalid_discovery_info")
        await self.async_set_unique_id(base_topic)
        self._abort_if_unique_id_configured()
        self._base_topic = base_topic
        self._device_name = caps.name
        self.context["title_placeholders"] = {"name": caps.name}
        return await self.async_step_discovery_confirm()

    async def async_step_discovery_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Confirm a discovered base topic."""
        if user_input is not None:
            return self.async_create_entry(
                title=_title(self._base_topic), data={CONF_BASE_TOPIC: self._base_topic}
            )
        self._set_confirm_only()
        return self.async_show_form(
            step_id="discovery_confirm",
            description_placeholders={
                "name": self._device_name,
                "base_topic": self._base_topic,
            },
        )

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the base topic."""
        if not self.hass.config_entries.async_entries(
            "mqtt", include_ignore=False, include_disabled=False
        ):
            return self.async_abort(reason="mqtt_not_configured")
        errors: dict[str, str] = {}
        if user_input is not None:
            base_topic = str(user_input[CONF_BASE_TOPIC]).strip()
            if not is_valid_base_topic(base_topic):
                errors[CONF_BASE_TOPIC] = "invalid_base_topic"
            else:
                await self.async_set_unique_id(base_topic)
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=_title(base_topic), data={CONF_BASE_TOPIC: base_topic}
                )
        return self.async_show_form(
            step_id="user", data_schema=_base_schema(DEFAULT_BASE), errors=errors
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the base topic of an entry."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            base_topic = str(user_input[CONF_BASE_TOPIC]).strip()
            old_topic = entry.data[CONF_BASE_TOPIC]
            if not is_valid_base_topic(base_topic):
                errors[CONF_BASE_TOPIC] = "invalid_base_topic"
            elif base_topic == old_topic:
                return self.async_update_reload_and_abort(entry)
            else:
                # The devices below the old base topic would be left without an entry
                # (their ids, names and history belong to it): refuse, say what to do.
                devices = dr.async_entries_for_config_entry(dr.async_get(self.hass), entry.entry_id)
                if devices:
                    return self.async_abort(
                        reason="base_topic_in_use",
                        description_placeholders={
                            "base_topic": old_topic,
                            "count": str(len(devices)),
                        },
                    )
                await self.async_set_unique_id(base_topic)
                self._abort_if_unique_id_configured()
                # Removed devices and repair issues were those of the old base topic.
                async_delete_issues(self.hass, entry.entry_id)
                data = {k: v for k, v in entry.data.items() if k != CONF_REMOVED_DEVICES}
                return self.async_update_reload_and_abort(
                    entry,
                    unique_id=base_topic,
                    title=_title(base_topic),
                    data={**data, CONF_BASE_TOPIC: base_topic},
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=_base_schema(entry.data[CONF_BASE_TOPIC]),
            errors=errors,
        )


class EspMcpBridgeOptionsFlow(OptionsFlow):
    """Options: offline timeout, device takeover, and adding removed devices again."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Manage the options."""
        removed = removed_devices(self.config_entry)
        if user_input is not None:
            restore = set(user_input.get(CONF_RESTORE_DEVICES, ()))
            if restore & set(removed):
                # The entry reloads: the devices' retained capabilities adopt them.
                async_set_removed_devices(
                    self.hass, self.config_entry, [i for i in removed if i not in restore]
                )
            return self.async_create_entry(
                data={
                    CONF_OFFLINE_TIMEOUT: int(user_input[CONF_OFFLINE_TIMEOUT]),
                    CONF_TAKE_OVER: bool(user_input[CONF_TAKE_OVER]),
                    CONF_ALL_DIAGNOSTICS: bool(user_input[CONF_ALL_DIAGNOSTICS]),
                }
            )
        options = self.config_entry.options
        schema = vol.Schema(
            {
                vol.Required(
                    CONF_OFFLINE_TIMEOUT,
                    default=options.get(CONF_OFFLINE_TIMEOUT, DEFAULT_OFFLINE_TIMEOUT),
                ): selector.NumberSelector(
                    selector.NumberSelectorConfig(
                        min=0,
                        max=MAX_OFFLINE_TIMEOUT,
                        step=1,
                        unit_of_measurement="s",
                        mode=selector.NumberSelectorMode.BOX,
                    )
                ),
                vol.Required(
                    CONF_TAKE_OVER, default=options.get(CONF_TAKE_OVER, DEFAULT_TAKE_OVER)
                ): selector.BooleanSelector(),
                vol.Required(
                    CONF_ALL_DIAGNOSTICS,
                    default=options.get(CONF_ALL_DIAGNOSTICS, DEFAULT_ALL_DIAGNOSTICS),
                ): selector.BooleanSelector(),
            }
        )
        if removed:
            schema = schema.extend(
                {
                    vol.Optional(CONF_RESTORE_DEVICES, default=[]): selector.SelectSelector(
                        selector.SelectSelectorConfig(
                            options=removed,
                            multiple=True,
                            mode=selector.SelectSelectorMode.LIST,
                        )
                    )
                }
            )
        return self.async_show_form(step_id="init", data_schema=schema)
